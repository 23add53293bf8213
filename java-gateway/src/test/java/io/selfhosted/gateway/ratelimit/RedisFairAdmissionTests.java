package io.selfhosted.gateway.ratelimit;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.selfhosted.gateway.support.FakeModelService;
import io.selfhosted.gateway.support.Flood;
import io.selfhosted.gateway.support.Flood.Served;
import io.selfhosted.gateway.support.GatewayReplicas;
import io.selfhosted.gateway.support.Json;
import io.selfhosted.gateway.support.PacedStream;
import io.selfhosted.gateway.support.SseClient;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import okhttp3.MediaType;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfEnvironmentVariable;
import org.springframework.context.ConfigurableApplicationContext;

/**
 * Two gateway replicas sharing one Redis: fair admission orders each gateway's queue by counters
 * that count what every key was served through both.
 */
@EnabledIfEnvironmentVariable(
    named = "GATEWAY_TEST_REDIS_URL",
    matches = ".+",
    disabledReason = "needs a Redis server: run through scripts/test-java.sh (make test)")
class RedisFairAdmissionTests {

  private static final String ADMIN = "redis-fair-admin-key";
  private static final FakeModelService UPSTREAM = new FakeModelService();
  private static ConfigurableApplicationContext first;
  private static ConfigurableApplicationContext second;

  @BeforeAll
  static void startTwoGateways() {
    UPSTREAM.setDefault(r -> PacedStream.of(Flood.answerLength(Json.parse(r.getBody().utf8())), 5));
    first = gateway();
    second = gateway();
  }

  @AfterAll
  static void stop() {
    second.close();
    first.close();
    UPSTREAM.close();
  }

  private static ConfigurableApplicationContext gateway() {
    return GatewayReplicas.start(
        "redis-fair",
        UPSTREAM,
        ADMIN,
        "--gateway.limits.model-in-flight.demo-model=4",
        "--gateway.limits.model-queue-wait=60s");
  }

  private static String createKey(String name) throws Exception {
    try (Response response =
        SseClient.HTTP
            .newCall(
                new Request.Builder()
                    .url(GatewayReplicas.url(first, "/admin/keys"))
                    .header("Authorization", "Bearer " + ADMIN)
                    .post(
                        RequestBody.create(
                            "{\"name\":\"" + name + "\"}", MediaType.get("application/json")))
                    .build())
            .execute()) {
      JsonNode created = Json.parse(response.body().string());
      return created.get("key").asText();
    }
  }

  /**
   * Key A keeps 8 requests outstanding on each gateway; key B keeps 6 on the first only. Each
   * gateway alone would split its own slots: A would get three quarters of the model (its own
   * gateway and half the other), a Jain index of 0.8. With shared counters the first gateway sees
   * that A is already served through the second, gives B its slots, and the two keys' shares are
   * even: Jain's index at least 0.95.
   */
  @Test
  void keysGetEvenSharesAcrossBothGateways() throws Exception {
    String a = createKey("everywhere");
    String b = createKey("first only");
    List<Map.Entry<String, Served>> done = new CopyOnWriteArrayList<>();
    AtomicBoolean running = new AtomicBoolean(true);
    ExecutorService workers = Executors.newFixedThreadPool(22);
    for (int i = 0; i < 22; i++) {
      String key = i < 16 ? a : b;
      ConfigurableApplicationContext gateway = i < 8 || i >= 16 ? first : second;
      String url = GatewayReplicas.url(gateway, "");
      workers.submit(
          () -> {
            while (running.get()) {
              done.add(Map.entry(key, Flood.send(url, key, 20)));
            }
            return null;
          });
    }
    long start = System.nanoTime();
    Thread.sleep(4_000);
    running.set(false);
    workers.shutdown();
    assertThat(workers.awaitTermination(30, TimeUnit.SECONDS)).isTrue();

    long from = start + TimeUnit.SECONDS.toNanos(1);
    long to = start + TimeUnit.SECONDS.toNanos(4);
    Map<String, Double> shares = new HashMap<>();
    for (Map.Entry<String, Served> entry : done) {
      Served served = entry.getValue();
      assertThat(served.status()).isEqualTo(200);
      if (served.endNanos() >= from && served.endNanos() < to) {
        shares.merge(entry.getKey(), served.weighted(2.0), Double::sum);
      }
    }
    assertThat(shares).hasSize(2);
    assertThat(Flood.jain(shares)).as("shares %s", shares).isGreaterThanOrEqualTo(0.95);
  }
}
