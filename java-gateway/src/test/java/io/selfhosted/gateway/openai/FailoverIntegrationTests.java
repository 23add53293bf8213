package io.selfhosted.gateway.openai;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import io.selfhosted.gateway.support.FakeModelService;
import io.selfhosted.gateway.support.Json;
import io.selfhosted.gateway.support.SseClient;
import io.selfhosted.gateway.support.SseClient.Event;
import java.util.List;
import okhttp3.MediaType;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.springframework.boot.test.autoconfigure.actuate.observability.AutoConfigureObservability;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;

/** The gateway in front of two replicas, with a cross-origin caller allowed by configuration. */
@AutoConfigureObservability
@SpringBootTest(webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT)
class FailoverIntegrationTests {

  private static final FakeModelService FIRST = new FakeModelService();
  private static final FakeModelService SECOND = new FakeModelService();
  private static final MediaType JSON = MediaType.get("application/json");
  private static final String ALLOWED_ORIGIN = "https://app.example";

  @LocalServerPort int port;

  @DynamicPropertySource
  static void properties(DynamicPropertyRegistry registry) {
    registry.add("gateway.upstream.urls", () -> FIRST.url() + "," + SECOND.url());
    registry.add("gateway.auth.admin-api-key", () -> "failover-key");
    registry.add("gateway.upstream.health-interval", () -> "200ms");
    registry.add("gateway.http.cors.allowed-origins", () -> ALLOWED_ORIGIN);
    registry.add("spring.datasource.url", () -> "jdbc:h2:mem:gateway-failover;DB_CLOSE_DELAY=-1");
  }

  @BeforeEach
  void reset() {
    FIRST.reset();
    SECOND.reset();
  }

  @AfterAll
  static void stop() {
    FIRST.close();
    SECOND.close();
  }

  private Response post(String path, String json) throws Exception {
    return SseClient.HTTP
        .newCall(
            new Request.Builder()
                .url("http://127.0.0.1:" + port + path)
                .header("Authorization", "Bearer failover-key")
                .post(RequestBody.create(json, JSON))
                .build())
        .execute();
  }

  private String streamedText(String json) throws Exception {
    try (SseClient stream = new SseClient(post("/v1/chat/completions", json))) {
      assertThat(stream.response().code()).isEqualTo(200);
      StringBuilder text = new StringBuilder();
      List<Event> events = stream.rest();
      for (Event e : events.subList(0, events.size() - 1)) {
        text.append(Json.parse(e.data()).at("/choices/0/delta/content").asText(""));
      }
      return text.toString();
    }
  }

  private static final String REQUEST =
      "{\"model\":\"demo-model\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";

  @Test
  void aClientNeverNoticesAReplicaFailingBeforeTheFirstToken() throws Exception {
    FIRST.setDefault(r -> FakeModelService.error(503, "overloaded", "queue_full", "full"));
    SECOND.setDefault(r -> FakeModelService.stream("from", " second"));

    for (int i = 0; i < 3; i++) {
      assertThat(streamedText(REQUEST)).isEqualTo("from second");
    }
  }

  @Test
  void aReplicaThatIsNotReadyIsTakenOutOfRotationAndReturns() throws Exception {
    FIRST.setReady(503);
    FIRST.setDefault(r -> FakeModelService.stream("first"));
    SECOND.setDefault(r -> FakeModelService.stream("second"));
    await().until(() -> replicaUp(FIRST).equals("0.0"));

    assertThat(streamedText(REQUEST)).isEqualTo("second");
    assertThat(FIRST.chatRequestCount()).isZero();

    FIRST.setReady(200);
    await().until(() -> replicaUp(FIRST).equals("1.0"));
    assertThat(streamedText(REQUEST)).isEqualTo("first");
  }

  @Test
  void healthTurnsDownWhenNoReplicaCanServe() throws Exception {
    FIRST.setReady(503);
    SECOND.setReady(503);
    await().until(() -> healthStatus() == 503);
    FIRST.setReady(200);
    await().until(() -> healthStatus() == 200);
  }

  @Test
  void allowsOnlyConfiguredOrigins() throws Exception {
    Request preflight =
        new Request.Builder()
            .url("http://127.0.0.1:" + port + "/v1/chat/completions")
            .method("OPTIONS", null)
            .header("Origin", ALLOWED_ORIGIN)
            .header("Access-Control-Request-Method", "POST")
            .header("Access-Control-Request-Headers", "authorization,content-type")
            .build();
    try (Response response = SseClient.HTTP.newCall(preflight).execute()) {
      assertThat(response.header("Access-Control-Allow-Origin")).isEqualTo(ALLOWED_ORIGIN);
    }
    Request other = preflight.newBuilder().header("Origin", "https://evil.example").build();
    try (Response response = SseClient.HTTP.newCall(other).execute()) {
      assertThat(response.code()).isEqualTo(403);
      assertThat(response.header("Access-Control-Allow-Origin")).isNull();
    }
  }

  /** The replica's state as Prometheus sees it: 1.0 in rotation, 0.0 ejected. */
  private String replicaUp(FakeModelService replica) throws Exception {
    try (Response response =
        SseClient.HTTP
            .newCall(
                new Request.Builder()
                    .url("http://127.0.0.1:" + port + "/actuator/prometheus")
                    .header("Authorization", "Bearer failover-key")
                    .build())
            .execute()) {
      return response
          .body()
          .string()
          .lines()
          .filter(
              l -> l.startsWith("gateway_upstream_up{") && l.contains("\"" + replica.url() + "\""))
          .map(l -> l.substring(l.lastIndexOf(' ') + 1))
          .findFirst()
          .orElse("missing");
    }
  }

  private int healthStatus() throws Exception {
    try (Response response =
        SseClient.HTTP
            .newCall(
                new Request.Builder().url("http://127.0.0.1:" + port + "/actuator/health").build())
            .execute()) {
      return response.code();
    }
  }
}
