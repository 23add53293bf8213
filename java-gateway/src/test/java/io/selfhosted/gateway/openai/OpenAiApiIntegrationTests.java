package io.selfhosted.gateway.openai;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.selfhosted.gateway.support.FakeModelService;
import io.selfhosted.gateway.support.FakeModelService.LiveStream;
import io.selfhosted.gateway.support.GatewayIntegrationTest;
import io.selfhosted.gateway.support.Json;
import io.selfhosted.gateway.support.SseClient;
import io.selfhosted.gateway.support.SseClient.Event;
import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import okhttp3.Call;
import okhttp3.Callback;
import okhttp3.MediaType;
import okhttp3.RequestBody;
import okhttp3.Response;
import org.junit.jupiter.api.Test;

/** The OpenAI-compatible surface as an OpenAI SDK would use it. */
class OpenAiApiIntegrationTests extends GatewayIntegrationTest {

  private static final String STREAM_REQUEST =
      "{\"model\":\"demo-model\",\"stream\":true,"
          + "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";

  private static String text(List<Event> events) {
    StringBuilder text = new StringBuilder();
    for (Event e : events) {
      if (!e.data().equals("[DONE]")) {
        text.append(
            Json.parse(e.data()).path("choices").path(0).path("delta").path("content").asText(""));
      }
    }
    return text.toString();
  }

  @Test
  void streamsEveryChunkInOrderAndEndsWithDone() throws Exception {
    try (SseClient stream = postStream("/v1/chat/completions", STREAM_REQUEST)) {
      assertThat(stream.response().code()).isEqualTo(200);
      assertThat(stream.response().header("Content-Type")).startsWith("text/event-stream");
      assertThat(stream.response().header("Cache-Control")).isEqualTo("no-cache");
      assertThat(stream.response().header("X-Accel-Buffering")).isEqualTo("no");
      assertThat(stream.response().header("Content-Encoding")).isNull();
      List<Event> events = stream.rest();

      assertThat(text(events)).isEqualTo("Hello, world!");
      assertThat(events.get(events.size() - 1).data()).isEqualTo("[DONE]");
      assertThat(events.stream().filter(e -> e.data().equals("[DONE]"))).hasSize(1);
      assertThat(events.stream().filter(e -> e.data().contains("\"usage\"")))
          .as("usage only when asked for")
          .isEmpty();
      assertThat(Json.parse(events.get(0).data()).get("model").asText()).isEqualTo("demo-model");
    }
    JsonNode upstream = Json.parse(UPSTREAM.chatRequests().get(0).getBody().utf8());
    assertThat(upstream.get("messages").get(0).get("role").asText())
        .as("the profile's system prompt comes first")
        .isEqualTo("system");
    assertThat(upstream.get("stream").asBoolean()).isTrue();
  }

  @Test
  void includesTheUsageChunkWhenAsked() throws Exception {
    String request =
        STREAM_REQUEST.replace(
            "\"stream\":true", "\"stream\":true,\"stream_options\":{\"include_usage\":true}");
    try (SseClient stream = postStream("/v1/chat/completions", request)) {
      List<Event> events = stream.rest();
      Event usage = events.get(events.size() - 2);
      assertThat(Json.parse(usage.data()).path("usage").path("completion_tokens").asInt())
          .isEqualTo(4);
      assertThat(events.get(events.size() - 1).data()).isEqualTo("[DONE]");
    }
  }

  @Test
  void aWholeReplyFromAnEngineWithoutUsageSaysItsCountIsAnEstimate() throws Exception {
    // An engine that sends neither a usage chunk nor [DONE]: the body ends after the finish reason.
    UPSTREAM.enqueue(
        FakeModelService.sse(
            "data: "
                + FakeModelService.chunk("你好", null)
                + "\n\ndata: "
                + FakeModelService.chunk("!", "stop")
                + "\n\n"));
    JsonNode answer =
        body(
            post(
                "/v1/chat/completions",
                "{\"model\":\"demo-model\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"));

    assertThat(answer.at("/choices/0/message/content").asText()).isEqualTo("你好!");
    assertThat(answer.at("/choices/0/finish_reason").asText()).isEqualTo("stop");
    assertThat(answer.at("/usage/prompt_tokens").asInt()).isPositive();
    assertThat(answer.at("/usage/completion_tokens").asInt()).isPositive();
    assertThat(answer.at("/usage/estimated").asBoolean()).isTrue();
  }

  @Test
  void answersWithoutStreaming() throws Exception {
    UPSTREAM.enqueue(FakeModelService.stream("Hi", " there"));
    JsonNode answer =
        body(
            post(
                "/v1/chat/completions",
                "{\"model\":\"demo-model\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                    + "\"max_tokens\":100000}"));

    assertThat(answer.at("/object").asText()).isEqualTo("chat.completion");
    assertThat(answer.at("/model").asText()).isEqualTo("demo-model");
    assertThat(answer.at("/choices/0/message/role").asText()).isEqualTo("assistant");
    assertThat(answer.at("/choices/0/message/content").asText()).isEqualTo("Hi there");
    assertThat(answer.at("/choices/0/finish_reason").asText()).isEqualTo("stop");
    assertThat(answer.at("/usage/total_tokens").asInt())
        .as("the upstream's own count")
        .isEqualTo(9);
    assertThat(answer.at("/usage").has("estimated")).as("a reported count").isFalse();
    JsonNode upstream = Json.parse(UPSTREAM.chatRequests().get(0).getBody().utf8());
    assertThat(upstream.get("max_tokens").asInt())
        .as("clamped to the profile maximum")
        .isEqualTo(1024);
  }

  @Test
  void passesIgnoreEosThroughForLoadTests() throws Exception {
    UPSTREAM.enqueue(FakeModelService.stream("Hi there"));
    post(
            "/v1/chat/completions",
            "{\"model\":\"demo-model\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                + "\"ignore_eos\":true}")
        .close();
    JsonNode upstream = Json.parse(UPSTREAM.chatRequests().get(0).getBody().utf8());
    assertThat(upstream.get("ignore_eos").asBoolean()).isTrue();
  }

  @Test
  void takesOpenAiShapesAndIgnoresFieldsItDoesNotServe() throws Exception {
    UPSTREAM.enqueue(FakeModelService.stream("Hi"));
    try (Response response =
        post(
            "/v1/chat/completions",
            "{\"model\":\"demo-model\",\"user\":\"u-1\",\"logit_bias\":{\"5\":1},"
                + "\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},"
                + "{\"role\":\"user\",\"name\":\"ann\",\"content\":"
                + "[{\"type\":\"text\",\"text\":\"hello \"},{\"type\":\"text\",\"text\":\"there\"}]}],"
                + "\"stop\":\"END\",\"temperature\":1,\"n\":1,\"stream_options\":null,"
                + "\"max_completion_tokens\":7,\"max_tokens\":99}")) {
      assertThat(response.code()).isEqualTo(200);
    }
    JsonNode upstream = Json.parse(UPSTREAM.chatRequests().get(0).getBody().utf8());
    assertThat(upstream.at("/messages/0/content").asText())
        .as("the client's own system message, no profile prompt before it")
        .isEqualTo("be brief");
    assertThat(upstream.at("/messages/1/content").asText()).isEqualTo("hello there");
    assertThat(upstream.get("messages")).hasSize(2);
    assertThat(upstream.get("stop").toString()).isEqualTo("[\"END\"]");
    assertThat(upstream.get("temperature").asDouble()).isEqualTo(1.0);
    assertThat(upstream.get("max_tokens").asInt())
        .as("max_completion_tokens wins over max_tokens")
        .isEqualTo(7);
  }

  @Test
  void listsTheConfiguredModels() throws Exception {
    JsonNode models = body(get("/v1/models"));
    assertThat(models.at("/data/0/id").asText()).isEqualTo("demo-model");
  }

  @Test
  void passesAnUpstream4xxThroughWithItsStatusAndMessage() throws Exception {
    UPSTREAM.enqueue(
        FakeModelService.error(
            400, "invalid_request_error", "context_length_exceeded", "prompt is too long"));
    try (Response response = post("/v1/chat/completions", STREAM_REQUEST)) {
      assertThat(response.code()).isEqualTo(400);
      JsonNode error = Json.parse(response.body().string()).get("error");
      assertThat(error.get("message").asText()).isEqualTo("prompt is too long");
      assertThat(error.get("code").asText()).isEqualTo("context_length_exceeded");
    }
  }

  @Test
  void reportsAnOverloadedUpstreamAs503WithRetryAfter() throws Exception {
    UPSTREAM.enqueue(FakeModelService.error(503, "overloaded", "queue_full", "queue is full"));
    try (Response response = post("/v1/chat/completions", STREAM_REQUEST)) {
      assertThat(response.code()).isEqualTo(503);
      assertThat(response.header("Retry-After")).isEqualTo("3");
      assertThat(Json.parse(response.body().string()).has("error")).isTrue();
    }
  }

  @Test
  void reportsAnUpstream500As502WithoutDetails() throws Exception {
    UPSTREAM.enqueue(
        FakeModelService.error(500, "server_error", "x", "Traceback (most recent call last)"));
    try (Response response = post("/v1/chat/completions", STREAM_REQUEST)) {
      assertThat(response.code()).isEqualTo(502);
      assertThat(response.body().string()).doesNotContain("Traceback");
    }
  }

  @Test
  void turnsAFailureMidStreamIntoAnErrorEventAndACleanEnd() throws Exception {
    LiveStream live = new LiveStream();
    UPSTREAM.enqueue(live);
    live.token("partial").breakOff();
    try (SseClient stream = postStream("/v1/chat/completions", STREAM_REQUEST)) {
      List<Event> events = stream.rest();

      assertThat(text(events.subList(0, 1))).isEqualTo("partial");
      assertThat(Json.parse(events.get(1).data()).at("/error/code").asText())
          .isEqualTo("upstream_unavailable");
      assertThat(events.get(2).data()).isEqualTo("[DONE]");
      assertThat(events).hasSize(3);
    }
  }

  @Test
  void aClientDisconnectCancelsTheUpstreamCall() throws Exception {
    LiveStream live = new LiveStream();
    UPSTREAM.enqueue(live);
    SseClient stream = postStream("/v1/chat/completions", STREAM_REQUEST);
    live.token("one");
    assertThat(text(List.of(stream.next()))).isEqualTo("one");

    stream.close();

    // The gateway notices at its next write (a token or a heartbeat) and hangs up upstream.
    live.token("two").token("three");
    assertThat(live.awaitClientGone()).isTrue();
  }

  @Test
  void aClientThatLeavesBeforeTheFirstTokenIsNoticedWithinAboutASecond() throws Exception {
    LiveStream live = new LiveStream();
    UPSTREAM.enqueue(live);
    SseClient stream = postStream("/v1/chat/completions", STREAM_REQUEST);
    assertThat(live.awaitStarted()).isTrue();
    long left = System.nanoTime();

    stream.close();

    // No token comes: only the gateway's heartbeats (every 400 ms on an idle stream) can tell.
    assertThat(live.awaitClientGone()).isTrue();
    assertThat(Duration.ofNanos(System.nanoTime() - left)).isLessThan(Duration.ofSeconds(5));
  }

  @Test
  void aWholeReplyCallWhoseClientLeavesIsCancelledUpstream() throws Exception {
    LiveStream live = new LiveStream();
    UPSTREAM.enqueue(live);
    Call call =
        SseClient.HTTP.newCall(
            request("/v1/chat/completions")
                .post(
                    RequestBody.create(
                        "{\"model\":\"demo-model\",\"messages\":[{\"role\":\"user\","
                            + "\"content\":\"hi\"}]}",
                        MediaType.get("application/json")))
                .build());
    call.enqueue(
        new Callback() {
          @Override
          public void onFailure(Call c, IOException e) {}

          @Override
          public void onResponse(Call c, Response response) {
            response.close();
          }
        });
    assertThat(live.awaitStarted()).isTrue();
    live.token("thinking");
    long left = System.nanoTime();

    call.cancel();

    assertThat(live.awaitClientGone()).isTrue();
    assertThat(Duration.ofNanos(System.nanoTime() - left)).isLessThan(Duration.ofSeconds(5));
  }

  @Test
  void sendsHeartbeatsOnAnIdleStream() throws Exception {
    LiveStream live = new LiveStream();
    UPSTREAM.enqueue(live);
    try (SseClient stream = postStream("/v1/chat/completions", STREAM_REQUEST)) {
      live.token("a");
      assertThat(text(List.of(stream.next()))).isEqualTo("a");

      // The upstream only pings now; those pings are not relayed, the gateway's heartbeat is.
      assertThat(stream.nextComment()).isEqualTo(": keep-alive");

      live.token("b");
      live.finish();
      assertThat(text(stream.rest())).isEqualTo("b");
    }
  }

  @Test
  void carriesFiftyConcurrentStreamsToOneReplica() throws Exception {
    int streams = 50;
    List<LiveStream> upstreams = new ArrayList<>();
    for (int i = 0; i < streams; i++) {
      LiveStream live = new LiveStream();
      upstreams.add(live);
      UPSTREAM.enqueue(live);
    }
    ExecutorService clients = Executors.newFixedThreadPool(streams);
    try {
      List<Future<String>> answers = new ArrayList<>();
      for (int i = 0; i < streams; i++) {
        Callable<String> client =
            () -> {
              try (SseClient stream = postStream("/v1/chat/completions", STREAM_REQUEST)) {
                return text(stream.rest());
              }
            };
        answers.add(clients.submit(client));
      }
      // Every stream is open upstream at the same time before any of them finishes.
      for (LiveStream live : upstreams) {
        assertThat(live.awaitStarted()).isTrue();
      }
      for (LiveStream live : upstreams) {
        live.token("tok").token("en");
        live.finish();
      }
      for (Future<String> answer : answers) {
        assertThat(answer.get()).isEqualTo("token");
      }
    } finally {
      clients.shutdownNow();
    }
  }

  @Test
  void exportsStreamAndUpstreamMetrics() throws Exception {
    try (SseClient stream = postStream("/v1/chat/completions", STREAM_REQUEST)) {
      stream.rest();
    }
    try (Response response =
        SseClient.HTTP.newCall(request("/actuator/prometheus").build()).execute()) {
      String metrics = response.body().string();
      assertThat(metrics)
          .contains("gateway_streams_active")
          .contains("gateway_ttft_added_seconds_count")
          .contains("gateway_upstream_up{")
          .contains("gateway_upstream_outstanding{");
    }
  }

  @Test
  void passesSixtyFourBitSeedsThrough() throws Exception {
    for (String seed : new String[] {"9223372036854775807", "-9223372036854775808", "4294967296"}) {
      try (var response =
          post(
              "/v1/chat/completions",
              "{\"model\":\"demo-model\",\"seed\":"
                  + seed
                  + ",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}")) {
        assertThat(response.code()).as(seed).isEqualTo(200);
      }
      assertThat(
              io.selfhosted.gateway.support.Json.parse(
                      UPSTREAM.chatRequests().get(UPSTREAM.chatRequestCount() - 1).getBody().utf8())
                  .get("seed")
                  .asText())
          .isEqualTo(seed);
    }
  }
}
