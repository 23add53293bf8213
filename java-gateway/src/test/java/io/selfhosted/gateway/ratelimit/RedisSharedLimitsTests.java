package io.selfhosted.gateway.ratelimit;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.selfhosted.gateway.support.FakeModelService;
import io.selfhosted.gateway.support.FakeModelService.LiveStream;
import io.selfhosted.gateway.support.GatewayReplicas;
import io.selfhosted.gateway.support.Json;
import io.selfhosted.gateway.support.Parallel;
import io.selfhosted.gateway.support.SseClient;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
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
 * Two gateway replicas, one database, one real Redis server (started by scripts/test-java.sh): a
 * key's limits hold across both, as if one gateway enforced them.
 */
@EnabledIfEnvironmentVariable(
    named = "GATEWAY_TEST_REDIS_URL",
    matches = ".+",
    disabledReason = "needs a Redis server: run through scripts/test-java.sh (make test)")
class RedisSharedLimitsTests {

  private static final String ADMIN = "redis-admin-key";
  private static final MediaType JSON = MediaType.get("application/json");
  private static final String CHAT =
      "{\"model\":\"demo-model\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
  private static final FakeModelService UPSTREAM = new FakeModelService();
  private static ConfigurableApplicationContext first;
  private static ConfigurableApplicationContext second;

  @BeforeAll
  static void startTwoGateways() {
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
    return GatewayReplicas.start("redis-shared", UPSTREAM, ADMIN);
  }

  private static String url(ConfigurableApplicationContext gateway, String path) {
    return GatewayReplicas.url(gateway, path);
  }

  private static Response post(ConfigurableApplicationContext gateway, String key, String json)
      throws Exception {
    return SseClient.HTTP
        .newCall(
            new Request.Builder()
                .url(url(gateway, "/v1/chat/completions"))
                .header("Authorization", "Bearer " + key)
                .post(RequestBody.create(json, JSON))
                .build())
        .execute();
  }

  private static String createKey(String limits) throws Exception {
    try (Response response =
        SseClient.HTTP
            .newCall(
                new Request.Builder()
                    .url(url(first, "/admin/keys"))
                    .header("Authorization", "Bearer " + ADMIN)
                    .post(
                        RequestBody.create("{\"name\":\"shared\",\"limits\":" + limits + "}", JSON))
                    .build())
            .execute()) {
      JsonNode created = Json.parse(response.body().string());
      return created.get("key").asText();
    }
  }

  @Test
  void aKeysRequestsPerMinuteHoldAcrossBothGateways() throws Exception {
    String key = createKey("{\"requestsPerMinute\":10}");

    List<String> outcomes =
        Parallel.run(
            40,
            i ->
                () -> {
                  ConfigurableApplicationContext gateway = i % 2 == 0 ? first : second;
                  try (Response response = post(gateway, key, CHAT)) {
                    return (gateway == first ? "first:" : "second:") + response.code();
                  }
                });

    assertThat(outcomes.stream().filter(o -> o.endsWith(":200"))).hasSize(10);
    assertThat(outcomes.stream().filter(o -> o.endsWith(":429"))).hasSize(30);
    assertThat(outcomes).contains("first:429", "second:429");
  }

  @Test
  void aKeysConcurrentStreamsAreCountedAcrossBothGateways() throws Exception {
    String key = createKey("{\"concurrentStreams\":4}");
    List<LiveStream> upstreams = UPSTREAM.holdEveryStream();
    String stream = CHAT.replace("{\"model\"", "{\"stream\":true,\"model\"");
    List<SseClient> open = new CopyOnWriteArrayList<>();

    List<Integer> statuses =
        Parallel.openStreams(
            12,
            i ->
                () ->
                    new SseClient(
                        SseClient.HTTP
                            .newCall(
                                new Request.Builder()
                                    .url(url(i % 2 == 0 ? first : second, "/v1/chat/completions"))
                                    .header("Authorization", "Bearer " + key)
                                    .post(RequestBody.create(stream, JSON))
                                    .build())
                            .execute()),
            open);

    assertThat(statuses.stream().filter(s -> s == 200)).hasSize(4);
    assertThat(statuses.stream().filter(s -> s == 429)).hasSize(8);
    for (LiveStream live : upstreams) {
      live.finish();
    }
    for (SseClient client : open) {
      client.rest();
      client.close();
    }
    UPSTREAM.reset();
  }
}
