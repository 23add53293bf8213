package io.selfhosted.gateway.degrade;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import io.github.resilience4j.circuitbreaker.CircuitBreaker;
import io.selfhosted.gateway.GatewayApplication;
import io.selfhosted.gateway.support.FakeModelService;
import io.selfhosted.gateway.support.FakeModelService.LiveStream;
import io.selfhosted.gateway.support.Json;
import io.selfhosted.gateway.support.Parallel;
import io.selfhosted.gateway.support.SseClient;
import io.selfhosted.gateway.upstream.Breakers;
import io.selfhosted.gateway.usage.UsageRecorder;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import okhttp3.MediaType;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.context.ConfigurableApplicationContext;

/**
 * The gateway when the model tier fails: a model service killed, brought back, slow, or overloaded;
 * many streams at once; and a switch flipped on one of two gateways.
 */
class ResilienceTests {

  private static final String ADMIN = "resilience-admin-key";
  private static final String DB = "jdbc:h2:mem:resilience;DB_CLOSE_DELAY=-1";
  private static final String SORRY = "Sorry, the model is resting. Try again soon.";
  private static final MediaType JSON = MediaType.get("application/json");
  private static final String CHAT =
      "{\"model\":\"demo-model\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
  private static final String CHAT_STREAM =
      "{\"model\":\"demo-model\",\"stream\":true,"
          + "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";

  private static int port;
  private static FakeModelService upstream;
  private static ConfigurableApplicationContext gateway;
  private final List<AutoCloseable> extra = new ArrayList<>();

  @BeforeAll
  static void start() {
    upstream = FakeModelService.restartable(); // it dies and comes back on its port
    port = upstream.port();
    gateway = gateway();
  }

  @AfterAll
  static void stop() {
    gateway.close();
    upstream.close();
  }

  private static ConfigurableApplicationContext gateway() {
    List<String> args =
        new ArrayList<>(
            List.of(
                "--server.port=0",
                "--spring.main.banner-mode=off",
                "--spring.datasource.url=" + DB,
                "--gateway.upstream.urls=http://127.0.0.1:" + port,
                "--gateway.upstream.token=internal-token",
                "--gateway.upstream.health-interval=200ms",
                "--gateway.auth.admin-api-key=" + ADMIN,
                "--gateway.breaker.window=10",
                "--gateway.breaker.minimum-calls=3",
                "--gateway.breaker.slow-first-token=500ms",
                "--gateway.breaker.slow-rate=50",
                "--gateway.breaker.open-for=1s",
                "--gateway.breaker.half-open-calls=1",
                "--gateway.fallback.reply=" + SORRY,
                "--gateway.shedding.max-wait=5s",
                "--gateway.models.profiles[0].name=demo-model",
                "--gateway.models.profiles[0].upstream-model=demo-model",
                "--gateway.models.profiles[0].fallback-model=second-model",
                "--gateway.models.profiles[1].name=second-model",
                "--gateway.models.profiles[1].upstream-model=second-model",
                "--gateway.shedding.scrape-interval=100ms"));
    String redis = System.getenv("GATEWAY_TEST_REDIS_URL");
    if (redis != null && !redis.isBlank()) {
      args.add("--gateway.redis.url=" + redis);
    }
    return new SpringApplicationBuilder(GatewayApplication.class).run(args.toArray(String[]::new));
  }

  @BeforeEach
  void fresh() throws Exception {
    if (upstream == null) {
      upstream = new FakeModelService(port);
    }
    upstream.reset();
    gateway.getBean(Breakers.class).all().forEach(CircuitBreaker::reset);
    gateway
        .getBean(org.springframework.jdbc.core.JdbcTemplate.class)
        .update("DELETE FROM switches");
    gateway.getBean(Switches.class).refresh();
    await().until(() -> reply(gateway, CHAT).content().equals("Hello, world!"));
  }

  @AfterEach
  void closeExtra() throws Exception {
    for (AutoCloseable closeable : extra) {
      closeable.close();
    }
  }

  private static void killUpstream() {
    upstream.close();
    upstream = null;
  }

  private static String url(ConfigurableApplicationContext app, String path) {
    return "http://127.0.0.1:" + app.getEnvironment().getProperty("local.server.port") + path;
  }

  private static Request.Builder request(ConfigurableApplicationContext app, String path) {
    return new Request.Builder().url(url(app, path)).header("Authorization", "Bearer " + ADMIN);
  }

  /** A whole /v1 reply: status, content, X-Degraded, and how long it took. */
  private record Reply(int status, String content, String degraded, long millis, JsonNode body) {}

  private static Reply reply(ConfigurableApplicationContext app, String json) throws Exception {
    long start = System.nanoTime();
    try (Response response =
        SseClient.HTTP
            .newCall(
                request(app, "/v1/chat/completions").post(RequestBody.create(json, JSON)).build())
            .execute()) {
      JsonNode body = Json.parse(response.body().string());
      return new Reply(
          response.code(),
          body.at("/choices/0/message/content").asText(""),
          response.header("X-Degraded"),
          TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start),
          body);
    }
  }

  private static CircuitBreaker.State modelBreaker() {
    return gateway.getBean(Breakers.class).model("demo-model").getState();
  }

  @Test
  void theBreakerOpensWhenTheModelServiceDiesAndClosesWhenItComesBack() throws Exception {
    killUpstream();
    for (int i = 0; i < 6; i++) {
      Reply fallback = reply(gateway, CHAT);
      assertThat(fallback.status()).isEqualTo(200);
      assertThat(fallback.content()).isEqualTo(SORRY);
      assertThat(fallback.degraded()).contains("fallback_reply");
      assertThat(fallback.millis()).as("no client left hanging").isLessThan(2000);
    }
    assertThat(modelBreaker()).isEqualTo(CircuitBreaker.State.OPEN);

    upstream = new FakeModelService(port);
    await()
        .atMost(Duration.ofSeconds(15))
        .untilAsserted(
            () -> {
              Reply normal = reply(gateway, CHAT);
              assertThat(normal.content()).isEqualTo("Hello, world!");
              assertThat(normal.degraded()).isNull();
            });
    assertThat(modelBreaker()).isEqualTo(CircuitBreaker.State.CLOSED);
  }

  @Test
  void aFailingModelIsAnsweredByItsFallbackModelThenByTheCannedReply() throws Exception {
    upstream.setDefault(
        r ->
            Json.parse(r.getBody().utf8()).get("model").asText().equals("demo-model")
                ? FakeModelService.error(500, "server_error", "engine_error", "the GPU fell over")
                : FakeModelService.stream("from", " the", " fallback"));
    Reply fallback = reply(gateway, CHAT);
    assertThat(fallback.status()).isEqualTo(200);
    assertThat(fallback.content()).isEqualTo("from the fallback");
    assertThat(fallback.degraded()).isEqualTo("fallback_model");
    assertThat(fallback.body().get("model").asText()).isEqualTo("demo-model");

    upstream.setDefault(r -> FakeModelService.error(500, "server_error", "engine_error", "down"));
    Reply canned = reply(gateway, CHAT);
    assertThat(canned.content()).isEqualTo(SORRY);
    assertThat(canned.degraded()).isEqualTo("fallback_model, fallback_reply");
  }

  @Test
  void aSlowFirstTokenOpensTheBreakerAndFallbacksAnswerAtOnce() throws Exception {
    upstream.setDefault(r -> FakeModelService.slow(800, "late"));
    // With the fast call of fresh(): two slow ones of three are over the 50% slow rate.
    for (int i = 0; i < 2; i++) {
      assertThat(reply(gateway, CHAT).content()).isEqualTo("late");
    }
    assertThat(modelBreaker()).isEqualTo(CircuitBreaker.State.OPEN);
    int calls = upstream.chatRequestCount();

    Reply fallback = reply(gateway, CHAT);
    assertThat(fallback.content()).isEqualTo(SORRY);
    // demo-model's fallback model is served by the same (slow) replica: both are out.
    assertThat(fallback.degraded()).isEqualTo("fallback_model, fallback_reply");
    assertThat(fallback.millis()).isLessThan(800);
    assertThat(upstream.chatRequestCount()).as("nothing sent while open").isEqualTo(calls);
  }

  @Test
  void killedMidStreamUnderLoadEveryClientEndsCleanlyAndUsageSaysHow() throws Exception {
    List<LiveStream> held = upstream.holdEveryStream();
    List<SseClient> clients = new ArrayList<>();
    for (int i = 0; i < 20; i++) {
      SseClient client =
          new SseClient(
              SseClient.HTTP
                  .newCall(
                      request(gateway, "/v1/chat/completions")
                          .post(RequestBody.create(CHAT_STREAM, JSON))
                          .build())
                  .execute());
      extra.add(client);
      clients.add(client);
    }
    await().until(() -> held.size() == 20);
    for (LiveStream live : held) {
      live.token("partial ");
    }
    for (SseClient client : clients) {
      assertThat(client.next().data()).contains("partial ");
    }

    long killed = System.nanoTime();
    killUpstream();
    List<Long> endMillis =
        Parallel.run(
            20,
            i ->
                () -> {
                  List<SseClient.Event> rest = clients.get(i).rest();
                  assertThat(rest.get(0).data()).contains("\"error\"");
                  assertThat(rest.get(rest.size() - 1).data()).isEqualTo("[DONE]");
                  return TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - killed);
                });
    assertThat(endMillis).allSatisfy(ms -> assertThat(ms).isLessThan(2000));

    Reply during = reply(gateway, CHAT);
    assertThat(during.content()).isEqualTo(SORRY);

    gateway.getBean(UsageRecorder.class).flush();
    JsonNode usage;
    try (Response response =
        SseClient.HTTP.newCall(request(gateway, "/admin/usage?limit=21").get().build()).execute()) {
      usage = Json.parse(response.body().string()).get("data");
    }
    assertThat(usage.get(0).get("degraded").asText()).isEqualTo("fallback_model, fallback_reply");
    assertThat(usage.get(0).get("status").asText()).isEqualTo("completed");
    for (int i = 1; i < 21; i++) {
      assertThat(usage.get(i).get("status").asText()).isEqualTo("failed");
      assertThat(usage.get(i).get("completionTokens").asInt()).isEqualTo(1);
    }
  }

  @Test
  void newRequestsAreShedWhenEveryReplicaIsTooFarBehind() throws Exception {
    long start = System.nanoTime();
    // 100 queued, 2 generations finishing per second: about 50 s to wait, over the 5 s bound.
    upstream.setMetrics(
        () ->
            "model_queue_depth 100.0\nmodel_running_requests 4.0\n"
                + "model_generations_total{finish_reason=\"stop\"} "
                + (2.0 * (System.nanoTime() - start) / 1e9)
                + "\n");
    await()
        .atMost(Duration.ofSeconds(5))
        .untilAsserted(() -> assertThat(reply(gateway, CHAT).status()).isEqualTo(503));
    int calls = upstream.chatRequestCount();
    try (Response response =
        SseClient.HTTP
            .newCall(
                request(gateway, "/v1/chat/completions")
                    .post(RequestBody.create(CHAT, JSON))
                    .build())
            .execute()) {
      assertThat(response.code()).isEqualTo(503);
      assertThat(Long.parseLong(response.header("Retry-After"))).isBetween(20L, 120L);
      assertThat(Json.parse(response.body().string()).at("/error/code").asText())
          .isEqualTo("overloaded");
    }
    assertThat(upstream.chatRequestCount()).isEqualTo(calls);

    upstream.setMetrics(
        () ->
            "model_queue_depth 0.0\nmodel_running_requests 1.0\n"
                + "model_generations_total{finish_reason=\"stop\"} 10.0\n");
    await()
        .atMost(Duration.ofSeconds(5))
        .untilAsserted(() -> assertThat(reply(gateway, CHAT).status()).isEqualTo(200));
  }

  @Test
  void aSwitchFlippedOnOneGatewayReachesTheOtherWithinTwoSeconds() throws Exception {
    ConfigurableApplicationContext second = gateway();
    extra.add(second::close);
    try (Response response =
        SseClient.HTTP
            .newCall(
                request(gateway, "/admin/switches/maintenance")
                    .put(RequestBody.create("{\"enabled\":true}", JSON))
                    .build())
            .execute()) {
      assertThat(response.code()).isEqualTo(200);
    }
    long flipped = System.nanoTime();
    await()
        .atMost(Duration.ofSeconds(2))
        .pollInterval(Duration.ofMillis(50))
        .untilAsserted(() -> assertThat(reply(second, CHAT).degraded()).isEqualTo("maintenance"));
    long seenAfter = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - flipped);

    try (Response response =
        SseClient.HTTP
            .newCall(request(second, "/admin/switches/maintenance").delete().build())
            .execute()) {
      assertThat(response.code()).isEqualTo(200);
    }
    await()
        .atMost(Duration.ofSeconds(2))
        .pollInterval(Duration.ofMillis(50))
        .untilAsserted(() -> assertThat(reply(gateway, CHAT).degraded()).isNull());
    assertThat(seenAfter).isLessThan(2000);
  }
}
