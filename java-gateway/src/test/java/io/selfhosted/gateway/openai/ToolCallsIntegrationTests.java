package io.selfhosted.gateway.openai;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.selfhosted.gateway.support.FakeModelService;
import io.selfhosted.gateway.support.GatewayIntegrationTest;
import io.selfhosted.gateway.support.Json;
import io.selfhosted.gateway.support.SseClient;
import io.selfhosted.gateway.support.SseClient.Event;
import io.selfhosted.gateway.usage.UsageRecorder;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;

/**
 * Tool calls, response formats and several choices on /v1: passed upstream as the client sent them,
 * relayed in OpenAI's shapes streamed and whole, and refused for a model whose profile says it
 * cannot serve them.
 */
class ToolCallsIntegrationTests extends GatewayIntegrationTest {

  static final String TOOLS =
      "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
          + "\"description\":\"The weather in a city\",\"parameters\":{\"type\":\"object\","
          + "\"properties\":{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]},"
          + "\"strict\":true}}]";

  @Autowired private UsageRecorder recorder;

  private static String chat(String model, boolean stream, String extra) {
    return "{\"model\":\""
        + model
        + "\",\"stream\":"
        + stream
        + extra
        + ",\"messages\":[{\"role\":\"user\",\"content\":\"Weather in Paris?\"}]}";
  }

  private static String withTools(boolean stream) {
    return chat(
        "demo-model",
        stream,
        ",\"tools\":" + TOOLS + ",\"tool_choice\":\"required\",\"parallel_tool_calls\":false");
  }

  private static JsonNode upstreamRequest(int index) {
    return Json.parse(UPSTREAM.chatRequests().get(index).getBody().utf8());
  }

  private static List<JsonNode> chunks(SseClient stream) throws Exception {
    List<Event> events = stream.rest();
    assertThat(events.get(events.size() - 1).data()).isEqualTo("[DONE]");
    List<JsonNode> chunks = new ArrayList<>();
    for (Event event : events.subList(0, events.size() - 1)) {
      chunks.add(Json.parse(event.data()));
    }
    return chunks;
  }

  @Test
  void aStreamedToolCallIsRelayedAsTheModelSentItAndTheToolsWentUpstreamAsSent() throws Exception {
    UPSTREAM.setDefault(
        r -> FakeModelService.toolCall(r, "call_1", "get_weather", "{\"city\":", " \"Paris\"}"));
    List<JsonNode> chunks;
    try (SseClient stream = postStream("/v1/chat/completions", withTools(true))) {
      assertThat(stream.response().code()).isEqualTo(200);
      chunks = chunks(stream);
    }

    List<JsonNode> fragments = new ArrayList<>();
    String finish = null;
    for (JsonNode chunk : chunks) {
      JsonNode choice = chunk.at("/choices/0");
      choice.path("delta").path("tool_calls").forEach(fragments::add);
      if (choice.path("finish_reason").isTextual()) {
        finish = choice.get("finish_reason").asText();
      }
    }
    assertThat(fragments).hasSize(3);
    JsonNode first = fragments.get(0);
    assertThat(first.get("index").asInt()).isZero();
    assertThat(first.get("id").asText()).isEqualTo("call_1");
    assertThat(first.get("type").asText()).isEqualTo("function");
    assertThat(first.at("/function/name").asText()).isEqualTo("get_weather");
    assertThat(first.at("/function/arguments").asText()).isEmpty();
    assertThat(fragments.get(1).has("id")).as("later fragments carry arguments only").isFalse();
    assertThat(
            fragments.get(1).at("/function/arguments").asText()
                + fragments.get(2).at("/function/arguments").asText())
        .isEqualTo("{\"city\": \"Paris\"}");
    assertThat(finish).isEqualTo("tool_calls");

    JsonNode upstream = upstreamRequest(0);
    assertThat(upstream.get("tools")).isEqualTo(Json.parse(TOOLS));
    assertThat(upstream.get("tool_choice").asText()).isEqualTo("required");
    assertThat(upstream.get("parallel_tool_calls").asBoolean(true)).isFalse();
    assertThat(upstream.has("n")).isFalse();
    assertThat(upstream.has("response_format")).isFalse();
  }

  @Test
  void aWholeReplyCarriesTheToolCallJoinedFromItsFragmentsWithNullContent() throws Exception {
    UPSTREAM.setDefault(
        r -> FakeModelService.toolCall(r, "call_7", "get_weather", "{\"ci", "ty\":\"Paris\"}"));
    JsonNode answer = body(post("/v1/chat/completions", withTools(false)));

    JsonNode choice = answer.at("/choices/0");
    assertThat(choice.at("/message/content").isNull()).isTrue();
    JsonNode call = choice.at("/message/tool_calls/0");
    assertThat(call.get("id").asText()).isEqualTo("call_7");
    assertThat(call.get("type").asText()).isEqualTo("function");
    assertThat(call.at("/function/name").asText()).isEqualTo("get_weather");
    assertThat(call.at("/function/arguments").asText()).isEqualTo("{\"city\":\"Paris\"}");
    assertThat(choice.at("/message/tool_calls")).hasSize(1);
    assertThat(choice.get("finish_reason").asText()).isEqualTo("tool_calls");
    assertThat(answer.at("/usage/completion_tokens").asInt()).isEqualTo(2);
    assertThat(upstreamRequest(0).get("stream").asBoolean()).as("gathered from a stream").isTrue();
  }

  @Test
  void aToolResultInTheHistoryGoesUpstreamWithTheCallItAnswers() throws Exception {
    String call =
        "{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
            + "\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}}";
    String body =
        "{\"model\":\"demo-model\",\"tools\":"
            + TOOLS
            + ",\"messages\":[{\"role\":\"user\",\"content\":\"Weather in Paris?\"},"
            + "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":["
            + call
            + "]},{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"sunny, 21 C\"}]}";
    JsonNode answer = body(post("/v1/chat/completions", body));
    assertThat(answer.at("/choices/0/message/content").asText()).isEqualTo("Hello, world!");

    JsonNode messages = upstreamRequest(0).get("messages");
    assertThat(messages).hasSize(4); // the profile's system prompt first
    JsonNode assistant = messages.get(2);
    assertThat(assistant.get("role").asText()).isEqualTo("assistant");
    assertThat(assistant.has("content")).isFalse();
    assertThat(assistant.get("tool_calls")).isEqualTo(Json.parse("[" + call + "]"));
    JsonNode tool = messages.get(3);
    assertThat(tool.get("role").asText()).isEqualTo("tool");
    assertThat(tool.get("tool_call_id").asText()).isEqualTo("call_1");
    assertThat(tool.get("content").asText()).isEqualTo("sunny, 21 C");
  }

  @Test
  void aResponseFormatAndANamedToolChoiceGoUpstreamAsSent() throws Exception {
    String format =
        "{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"weather\",\"description\":\"w\","
            + "\"schema\":{\"type\":\"object\",\"properties\":{\"t\":{\"type\":\"number\"}},"
            + "\"required\":[\"t\"],\"additionalProperties\":false},\"strict\":true}}";
    String named = "{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"}}";
    try (Response response =
        post(
            "/v1/chat/completions",
            chat(
                "demo-model",
                false,
                ",\"response_format\":"
                    + format
                    + ",\"tools\":"
                    + TOOLS
                    + ",\"tool_choice\":"
                    + named
                    + ",\"n\":1"))) {
      assertThat(response.code()).isEqualTo(200);
    }
    JsonNode upstream = upstreamRequest(0);
    assertThat(upstream.get("response_format")).isEqualTo(Json.parse(format));
    assertThat(upstream.get("tool_choice")).isEqualTo(Json.parse(named));
    assertThat(upstream.get("n").asInt()).isEqualTo(1);
    assertThat(upstream.has("parallel_tool_calls")).isFalse();
  }

  @Test
  void twoStreamedChoicesKeepTheirIndexAndFinishAndTheUsageCountsBoth() throws Exception {
    UPSTREAM.setDefault(r -> FakeModelService.choices(r, "Hi!", "Hello!"));
    Map<Integer, StringBuilder> texts = new TreeMap<>();
    Map<Integer, String> finishes = new TreeMap<>();
    JsonNode usage = null;
    try (SseClient stream =
        postStream(
            "/v1/chat/completions",
            chat("demo-model", true, ",\"n\":2,\"stream_options\":{\"include_usage\":true}"))) {
      for (JsonNode chunk : chunks(stream)) {
        for (JsonNode choice : chunk.path("choices")) {
          int index = choice.get("index").asInt();
          texts
              .computeIfAbsent(index, i -> new StringBuilder())
              .append(choice.at("/delta/content").asText(""));
          if (choice.path("finish_reason").isTextual()) {
            finishes.put(index, choice.get("finish_reason").asText());
          }
        }
        if (chunk.path("usage").isObject()) {
          usage = chunk.get("usage");
        }
      }
    }
    assertThat(texts.get(0).toString()).isEqualTo("Hi!");
    assertThat(texts.get(1).toString()).isEqualTo("Hello!");
    assertThat(finishes).containsEntry(0, "stop").containsEntry(1, "stop");
    assertThat(usage.get("completion_tokens").asInt()).isEqualTo(9);
    assertThat(upstreamRequest(0).get("n").asInt()).isEqualTo(2);
  }

  @Test
  void twoWholeChoicesAreGatheredEachOnItsOwnAndTheUsageRecordCountsBoth() throws Exception {
    Key key = createKey("{\"name\":\"two choices\"}");
    UPSTREAM.setDefault(r -> FakeModelService.choices(r, "Yes.", "No."));
    JsonNode answer =
        body(postAs(key.secret(), "/v1/chat/completions", chat("demo-model", false, ",\"n\":2")));
    JsonNode choices = answer.get("choices");
    assertThat(choices).hasSize(2);
    assertThat(choices.get(0).get("index").asInt()).isZero();
    assertThat(choices.get(0).at("/message/content").asText()).isEqualTo("Yes.");
    assertThat(choices.get(1).get("index").asInt()).isEqualTo(1);
    assertThat(choices.get(1).at("/message/content").asText()).isEqualTo("No.");
    assertThat(choices.get(1).get("finish_reason").asText()).isEqualTo("stop");
    assertThat(answer.at("/usage/completion_tokens").asInt()).isEqualTo(7);

    recorder.flush();
    JsonNode record = body(get("/admin/usage?keyId=" + key.id())).at("/data/0");
    assertThat(record.get("completionTokens").asInt()).isEqualTo(7);
  }

  @Test
  void aTokenLimitReservesMaxTokensForEveryChoice() throws Exception {
    Key key = createKey("{\"name\":\"budgeted\",\"limits\":{\"tokensPerMinute\":3000}}");
    long[] remaining = new long[2];
    int i = 0;
    for (String n : List.of("", ",\"n\":3")) {
      try (Response response =
          postAs(
              key.secret(),
              "/v1/chat/completions",
              chat("demo-model", false, ",\"max_tokens\":100" + n))) {
        assertThat(response.code()).isEqualTo(200);
        remaining[i++] = Long.parseLong(response.header("x-ratelimit-remaining-tokens"));
      }
    }
    // Each reserves its prompt and max_tokens per choice; the first gave back all but the 11
    // tokens it used, so the second holds about 200 more (the bucket refills 50 a second).
    assertThat(remaining[0] - remaining[1]).isBetween(150L, 211L);
  }

  @Test
  void aModelWhoseProfileCallsNoToolsRefusesThemBeforeAnythingGoesUpstream() throws Exception {
    for (String[] refused :
        new String[][] {
          {",\"tools\":" + TOOLS, "tools"},
          {",\"tools\":" + TOOLS + ",\"tool_choice\":\"none\"", "tools"},
          {",\"response_format\":{\"type\":\"json_object\"}", "response_format"},
        }) {
      try (Response response =
          post("/v1/chat/completions", chat("second-model", false, refused[0]))) {
        JsonNode error = Json.parse(response.body().string()).get("error");
        assertThat(response.code()).as(refused[0]).isEqualTo(400);
        assertThat(error.get("param").asText()).isEqualTo(refused[1]);
        assertThat(error.get("code").asText()).isEqualTo("unsupported_parameter");
        assertThat(error.get("message").asText()).contains("second-model");
      }
    }
    assertThat(UPSTREAM.chatRequestCount()).isZero();
    // Plain text is still what it always was.
    try (Response response =
        post(
            "/v1/chat/completions",
            chat("second-model", false, ",\"response_format\":{\"type\":\"text\"}"))) {
      assertThat(response.code()).isEqualTo(200);
    }
  }

  @Test
  void theNewFieldsNeedAKeyLikeAnyOtherRequest() throws Exception {
    okhttp3.MediaType json = okhttp3.MediaType.get("application/json");
    try (Response anonymous =
        SseClient.HTTP
            .newCall(
                new Request.Builder()
                    .url(url("/v1/chat/completions"))
                    .post(RequestBody.create(withTools(true), json))
                    .build())
            .execute()) {
      assertThat(anonymous.code()).isEqualTo(401);
    }
    Key other = createKey("{\"name\":\"other model only\",\"models\":[\"second-model\"]}");
    try (Response forbidden = postAs(other.secret(), "/v1/chat/completions", withTools(false))) {
      assertThat(forbidden.code()).isEqualTo(403);
    }
    assertThat(UPSTREAM.chatRequestCount()).isZero();
  }
}
