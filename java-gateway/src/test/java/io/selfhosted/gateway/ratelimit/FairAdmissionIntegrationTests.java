package io.selfhosted.gateway.ratelimit;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.selfhosted.gateway.support.Flood;
import io.selfhosted.gateway.support.Flood.Served;
import io.selfhosted.gateway.support.GatewayIntegrationTest;
import io.selfhosted.gateway.support.Json;
import io.selfhosted.gateway.support.PacedStream;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import okhttp3.Response;
import org.junit.jupiter.api.Test;
import org.springframework.test.context.TestPropertySource;

/**
 * Fair admission through the whole gateway, on a fake model service that streams at a steady pace:
 * a flood of one key does not hold back another key's requests, and keys that stay backlogged are
 * served tokens in proportion to their weights.
 */
@TestPropertySource(
    properties = {
      "gateway.limits.model-in-flight.demo-model=8",
      "gateway.limits.model-queue-wait=60s"
    })
class FairAdmissionIntegrationTests extends GatewayIntegrationTest {

  private static final long MILLIS_PER_TOKEN = 10;

  private void pacedAnswers() {
    UPSTREAM.setDefault(
        r -> PacedStream.of(Flood.answerLength(Json.parse(r.getBody().utf8())), MILLIS_PER_TOKEN));
  }

  private static long millis(long nanos) {
    return TimeUnit.NANOSECONDS.toMillis(nanos);
  }

  private static long median(List<Long> values) {
    List<Long> sorted = values.stream().sorted().toList();
    return sorted.get(sorted.size() / 2);
  }

  /**
   * Key A queues 100 long answers (10 to 40 tokens) at once; key B then asks 10 short ones (5
   * tokens), one after the other, as a person would. B's requests take at most twice as long as on
   * the idle service (median), and none waits longer than one of A's answers takes, since a started
   * answer is never stopped for another; first come first served would have put each behind most of
   * A's queue (about 3 s).
   */
  @Test
  void aFloodingKeyDoesNotHoldBackAnotherKeysShortRequests() throws Exception {
    pacedAnswers();
    Key flooder = createKey("{\"name\":\"batch job\"}");
    Key person = createKey("{\"name\":\"person\"}");
    List<Long> idle = new ArrayList<>();
    for (int i = 0; i < 10; i++) {
      Served served = Flood.send(url(""), person.secret(), 5);
      assertThat(served.status()).isEqualTo(200);
      idle.add(millis(served.endNanos() - served.sentNanos()));
    }

    ExecutorService batch = Executors.newFixedThreadPool(100);
    Random lengths = new Random(20);
    List<Future<Served>> flood = new ArrayList<>();
    for (int i = 0; i < 100; i++) {
      int tokens = 10 + lengths.nextInt(31);
      flood.add(batch.submit(() -> Flood.send(url(""), flooder.secret(), tokens)));
    }
    awaitWaiting(flooder.id(), 50);

    List<Long> busy = new ArrayList<>();
    for (int i = 0; i < 10; i++) {
      Served served = Flood.send(url(""), person.secret(), 5);
      assertThat(served.status()).isEqualTo(200);
      busy.add(millis(served.endNanos() - served.sentNanos()));
    }
    int flooderStillWaiting = waiting(flooder.id());

    for (Future<Served> request : flood) {
      assertThat(request.get(60, TimeUnit.SECONDS).status()).isEqualTo(200);
    }
    batch.shutdown();
    assertThat(flooderStillWaiting).as("A's flood was still queued").isGreaterThan(20);
    assertThat(median(busy))
        .as("B under the flood %s ms, idle %s ms", busy, idle)
        .isLessThanOrEqualTo(2 * median(idle));
    assertThat(busy.stream().mapToLong(Long::longValue).max().orElseThrow())
        .isLessThan(2 * median(idle) + 40 * MILLIS_PER_TOKEN);
  }

  /**
   * Two keys keep 12 requests each outstanding for a few seconds; one has weight 2 and answers a
   * quarter as long. Over the window, Jain's index of the weighted tokens each was served (prompt
   * plus twice the generated tokens, over the key's weight) is at least 0.95: the weight-2 key gets
   * twice the share.
   */
  @Test
  void keysThatStayBackloggedAreServedTokensByWeight() throws Exception {
    pacedAnswers();
    Key one = createKey("{\"name\":\"long answers\"}");
    Key two = createKey("{\"name\":\"short answers\",\"limits\":{\"weight\":2}}");
    Map<String, Integer> length = Map.of(one.secret(), 40, two.secret(), 10);
    Map<String, Double> weight = Map.of(one.secret(), 1.0, two.secret(), 2.0);
    List<Map.Entry<String, Served>> done = new CopyOnWriteArrayList<>();
    AtomicBoolean running = new AtomicBoolean(true);
    ExecutorService workers = Executors.newFixedThreadPool(24);
    for (int i = 0; i < 24; i++) {
      String secret = i % 2 == 0 ? one.secret() : two.secret();
      workers.submit(
          () -> {
            while (running.get()) {
              Served served = Flood.send(url(""), secret, length.get(secret));
              done.add(Map.entry(secret, served));
            }
            return null;
          });
    }
    long start = System.nanoTime();
    Thread.sleep(4_000);
    running.set(false);
    workers.shutdown();
    assertThat(workers.awaitTermination(30, TimeUnit.SECONDS)).isTrue();

    // The window: from 1 s (both keys backlogged) to 4 s, by when each request ended.
    long from = start + TimeUnit.SECONDS.toNanos(1);
    long to = start + TimeUnit.SECONDS.toNanos(4);
    Map<String, Double> shares = new HashMap<>();
    for (Map.Entry<String, Served> entry : done) {
      Served served = entry.getValue();
      assertThat(served.status()).isEqualTo(200);
      if (served.endNanos() >= from && served.endNanos() < to) {
        shares.merge(
            entry.getKey(), served.weighted(2.0) / weight.get(entry.getKey()), Double::sum);
      }
    }
    assertThat(shares).hasSize(2);
    assertThat(Flood.jain(shares)).as("weighted shares %s", shares).isGreaterThanOrEqualTo(0.95);
  }

  /** The live status shows each key's waiting requests and share of the capped model. */
  @Test
  void theStatusShowsWaitingRequestsAndSharesPerKey() throws Exception {
    pacedAnswers();
    Key flooder = createKey("{\"name\":\"status flood\"}");
    ExecutorService batch = Executors.newFixedThreadPool(20);
    List<Future<Served>> flood = new ArrayList<>();
    for (int i = 0; i < 20; i++) {
      flood.add(batch.submit(() -> Flood.send(url(""), flooder.secret(), 20)));
    }
    awaitWaiting(flooder.id(), 5);
    JsonNode model = admission();
    assertThat(model.path("order").asText()).isEqualTo("fair");
    assertThat(model.path("capacity").asInt()).isEqualTo(8);
    JsonNode key = keyState(model, flooder.id());
    assertThat(key.path("name").asText()).isEqualTo("status flood");
    assertThat(key.path("waiting").asInt()).isGreaterThanOrEqualTo(5);
    for (Future<Served> request : flood) {
      request.get(60, TimeUnit.SECONDS);
    }
    batch.shutdown();
    assertThat(keyState(admission(), flooder.id()).path("share").asDouble()).isGreaterThan(0);
  }

  private JsonNode admission() throws Exception {
    try (Response response = get("/admin/status")) {
      JsonNode status = Json.parse(response.body().string());
      for (JsonNode model : status.path("admission")) {
        if (model.path("model").asText().equals("demo-model")) {
          return model;
        }
      }
    }
    return Json.parse("{}"); // no request reached the capped model yet
  }

  private static JsonNode keyState(JsonNode model, String keyId) {
    for (JsonNode key : model.path("keys")) {
      if (key.path("keyId").asText().equals(keyId)) {
        return key;
      }
    }
    return Json.parse("{}");
  }

  private int waiting(String keyId) throws Exception {
    return keyState(admission(), keyId).path("waiting").asInt(0);
  }

  private void awaitWaiting(String keyId, int count) throws Exception {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
    while (waiting(keyId) < count) {
      assertThat(System.nanoTime()).as("%s requests waiting", count).isLessThan(deadline);
      Thread.sleep(20);
    }
  }
}
