package io.selfhosted.gateway.stream;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.selfhosted.gateway.support.FakeModelService;
import io.selfhosted.gateway.support.FakeModelService.LiveStream;
import io.selfhosted.gateway.support.GatewayReplicas;
import io.selfhosted.gateway.support.Json;
import io.selfhosted.gateway.support.SseClient;
import io.selfhosted.gateway.support.SseClient.Event;
import java.util.List;
import java.util.UUID;
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
 * browser's stream started on one resumes on the other exactly, and a cancel on either stops it; a
 * switch set on one is in effect on the other at once, not at its next database refresh.
 */
@EnabledIfEnvironmentVariable(
    named = "GATEWAY_TEST_REDIS_URL",
    matches = ".+",
    disabledReason = "needs a Redis server: run through scripts/test-java.sh (make test)")
class SharedStreamsIntegrationTests {

  private static final String ADMIN = "shared-streams-admin-key";
  private static final MediaType JSON = MediaType.get("application/json");
  private static final FakeModelService UPSTREAM = new FakeModelService();
  private static final String DATABASE = "shared-streams-" + UUID.randomUUID();
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
    return GatewayReplicas.start(
        DATABASE,
        UPSTREAM,
        ADMIN,
        "--gateway.stream.resume-grace=5s",
        // Only the Redis notice can carry a switch change to the other replica in time.
        "--gateway.switches.refresh-interval=1h");
  }

  private static String url(ConfigurableApplicationContext gateway, String path) {
    return GatewayReplicas.url(gateway, path);
  }

  private static Request.Builder request(ConfigurableApplicationContext gateway, String path) {
    return new Request.Builder().url(url(gateway, path)).header("Authorization", "Bearer " + ADMIN);
  }

  private static JsonNode post(ConfigurableApplicationContext gateway, String path, String json)
      throws Exception {
    try (Response response =
        SseClient.HTTP
            .newCall(request(gateway, path).post(RequestBody.create(json, JSON)).build())
            .execute()) {
      assertThat(response.code()).isBetween(200, 299);
      return Json.parse(response.body().string());
    }
  }

  private static int put(ConfigurableApplicationContext gateway, String path, String json)
      throws Exception {
    try (Response response =
        SseClient.HTTP
            .newCall(request(gateway, path).put(RequestBody.create(json, JSON)).build())
            .execute()) {
      return response.code();
    }
  }

  private static JsonNode get(ConfigurableApplicationContext gateway, String path)
      throws Exception {
    try (Response response =
        SseClient.HTTP.newCall(request(gateway, path).get().build()).execute()) {
      return Json.parse(response.body().string());
    }
  }

  private static SseClient open(
      ConfigurableApplicationContext gateway, String streamUrl, String lastEventId)
      throws Exception {
    Request.Builder request = request(gateway, streamUrl).header("Accept", "text/event-stream");
    if (lastEventId != null) {
      request.header("Last-Event-ID", lastEventId);
    }
    return new SseClient(SseClient.HTTP.newCall(request.get().build()).execute());
  }

  /** Asks on {@code gateway}; answers the turn ({@code messageId}, {@code streamUrl}). */
  private static JsonNode ask(ConfigurableApplicationContext gateway, String conversation)
      throws Exception {
    return post(
        gateway,
        "/api/conversations/" + conversation + "/messages",
        "{\"model\":\"demo-model\",\"query\":\"tell me\"}");
  }

  private static String text(List<Event> events) {
    StringBuilder text = new StringBuilder();
    for (Event e : events) {
      if ("message".equals(e.event())) {
        text.append(Json.parse(e.data()).get("text").asText());
      }
    }
    return text.toString();
  }

  @Test
  void aStreamStartedOnOneGatewayResumesOnTheOtherExactly() throws Exception {
    LiveStream live = new LiveStream();
    UPSTREAM.enqueue(live);
    String conversation = post(first, "/api/conversations", "{}").get("id").asText();
    JsonNode turn = ask(first, conversation);
    String streamUrl = turn.get("streamUrl").asText();

    try (SseClient browser = open(first, streamUrl, null)) {
      live.token("Hello");
      Event event = browser.next();
      assertThat(event.id()).isEqualTo("1");
      assertThat(Json.parse(event.data()).get("text").asText()).isEqualTo("Hello");
    } // the connection drops; generation goes on
    live.token(", world");
    live.token("!");

    List<Event> resumed;
    try (SseClient browser = open(second, streamUrl, "1")) {
      assertThat(browser.response().code()).isEqualTo(200);
      assertThat(browser.next().id()).isEqualTo("2");
      live.finish();
      resumed = browser.rest();
    }

    assertThat(resumed).extracting(Event::id).containsExactly("3", "4");
    assertThat(resumed.get(1).event()).isEqualTo("finish");
    assertThat(text(resumed)).isEqualTo("!");
    JsonNode stored = get(second, "/api/conversations/" + conversation + "/messages").get("data");
    assertThat(stored.get(1).get("content").asText()).isEqualTo("Hello, world!");
    assertThat(stored.get(1).get("status").asText()).isEqualTo("complete");
    try (SseClient over = open(second, streamUrl, "4")) {
      assertThat(over.response().code()).as("nothing left: no reconnect").isEqualTo(204);
    }
  }

  @Test
  void aCancelOnTheOtherGatewayStopsTheGeneration() throws Exception {
    LiveStream live = new LiveStream();
    UPSTREAM.enqueue(live);
    String conversation = post(first, "/api/conversations", "{}").get("id").asText();
    JsonNode turn = ask(first, conversation);
    String messageId = turn.get("messageId").asText();

    try (SseClient browser = open(second, turn.get("streamUrl").asText(), null)) {
      live.token("Once upon");
      assertThat(browser.next().id()).isEqualTo("1");
      JsonNode streaming =
          get(second, "/api/conversations/" + conversation + "/messages").get("data").get(1);
      assertThat(streaming.get("status").asText()).isEqualTo("streaming");
      assertThat(streaming.get("content").asText()).as("live text").isEqualTo("Once upon");

      JsonNode cancelled = post(second, "/api/streams/" + messageId + "/cancel", "");
      assertThat(cancelled.get("status").asText()).isEqualTo("cancelled");

      List<Event> rest = browser.rest();
      assertThat(rest).hasSize(1);
      assertThat(Json.parse(rest.get(0).data()).get("finish_reason").asText())
          .isEqualTo("cancelled");
    }
    assertThat(live.awaitClientGone()).as("the owner cancelled upstream").isTrue();
  }

  @Test
  void aSwitchSetOnOneReplicaIsInEffectOnTheOtherAtOnce() throws Exception {
    assertThat(put(first, "/admin/switches/read_only", "{\"value\":true}")).isEqualTo(200);
    try {
      long deadline = System.nanoTime() + 2_000_000_000L;
      int status = 0;
      while (System.nanoTime() < deadline) {
        try (Response response =
            SseClient.HTTP
                .newCall(
                    request(second, "/v1/chat/completions")
                        .post(
                            RequestBody.create(
                                "{\"model\":\"demo-model\",\"messages\":[{\"role\":\"user\","
                                    + "\"content\":\"hi\"}]}",
                                JSON))
                        .build())
                .execute()) {
          status = response.code();
        }
        if (status == 503) {
          break;
        }
        Thread.sleep(20);
      }
      assertThat(status)
          .as("read_only on the other replica, with a refresh interval of 1 h")
          .isEqualTo(503);
    } finally {
      assertThat(put(first, "/admin/switches/read_only", "{\"value\":false}")).isEqualTo(200);
    }
  }
}
