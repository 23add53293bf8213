package io.selfhosted.gateway.openai;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.selfhosted.gateway.support.FakeModelService;
import io.selfhosted.gateway.support.GatewayIntegrationTest;
import io.selfhosted.gateway.support.Json;
import io.selfhosted.gateway.support.SseClient;
import io.selfhosted.gateway.support.SseClient.Event;
import java.util.ArrayList;
import java.util.List;
import okhttp3.Response;
import org.junit.jupiter.api.Test;

/** logprobs and top_logprobs on /v1: asked upstream only when the client asks, relayed as sent. */
class LogprobsIntegrationTests extends GatewayIntegrationTest {

  private static String chat(boolean stream, String logprobs) {
    return "{\"model\":\"demo-model\",\"stream\":"
        + stream
        + logprobs
        + ",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
  }

  private static JsonNode upstreamRequest(int index) {
    return Json.parse(UPSTREAM.chatRequests().get(index).getBody().utf8());
  }

  private static List<String> tokens(JsonNode entries) {
    List<String> tokens = new ArrayList<>();
    entries.forEach(entry -> tokens.add(entry.get("token").asText()));
    return tokens;
  }

  @Test
  void aStreamRelaysEachChunksLogprobsWithItsText() throws Exception {
    List<String> texts = new ArrayList<>();
    List<List<String>> tokens = new ArrayList<>();
    try (SseClient stream =
        postStream("/v1/chat/completions", chat(true, ",\"logprobs\":true,\"top_logprobs\":2"))) {
      for (Event event : stream.rest()) {
        if (event.data().equals("[DONE]")) {
          continue;
        }
        JsonNode choice = Json.parse(event.data()).at("/choices/0");
        if (choice.at("/delta/content").isTextual()) {
          texts.add(choice.at("/delta/content").asText());
          JsonNode entries = choice.at("/logprobs/content");
          tokens.add(tokens(entries));
          entries.forEach(entry -> assertThat(entry.get("top_logprobs")).hasSize(2));
          assertThat(entries.get(0).get("logprob").asDouble()).isEqualTo(-0.25);
          assertThat(entries.get(0).get("bytes").isArray()).isTrue();
        }
      }
    }
    assertThat(texts).containsExactly("Hello", ",", " world", "!");
    assertThat(tokens)
        .containsExactly(List.of("Hello"), List.of(","), List.of(" world"), List.of("!"));
    JsonNode upstream = upstreamRequest(0);
    assertThat(upstream.get("logprobs").asBoolean()).isTrue();
    assertThat(upstream.get("top_logprobs").asInt()).isEqualTo(2);
  }

  @Test
  void aWholeReplyCarriesEveryChunksEntriesInOrder() throws Exception {
    UPSTREAM.setDefault(r -> FakeModelService.answer(r, "你好", "!", " I am", " here."));
    JsonNode answer =
        body(post("/v1/chat/completions", chat(false, ",\"logprobs\":true,\"top_logprobs\":0")));

    assertThat(answer.at("/choices/0/message/content").asText()).isEqualTo("你好! I am here.");
    JsonNode entries = answer.at("/choices/0/logprobs/content");
    assertThat(tokens(entries)).containsExactly("你好", "!", " I am", " here.");
    entries.forEach(entry -> assertThat(entry.get("top_logprobs")).isEmpty());
    assertThat(answer.at("/choices/0/finish_reason").asText()).isEqualTo("stop");
    JsonNode upstream = upstreamRequest(0);
    assertThat(upstream.get("stream").asBoolean()).as("gathered from a stream").isTrue();
    assertThat(upstream.get("logprobs").asBoolean()).isTrue();
    assertThat(upstream.get("top_logprobs").asInt()).isZero();
  }

  @Test
  void withoutLogprobsNeitherTheUpstreamNorTheReplySeesThem() throws Exception {
    JsonNode answer = body(post("/v1/chat/completions", chat(false, "")));
    assertThat(answer.at("/choices/0").has("logprobs")).isFalse();
    try (SseClient stream = postStream("/v1/chat/completions", chat(true, ""))) {
      for (Event event : stream.rest()) {
        assertThat(event.data()).doesNotContain("logprobs");
      }
    }
    JsonNode whole = upstreamRequest(0);
    JsonNode streamed = upstreamRequest(1);
    for (JsonNode upstream : List.of(whole, streamed)) {
      assertThat(upstream.has("logprobs")).isFalse();
      assertThat(upstream.has("top_logprobs")).isFalse();
    }
    assertThat(streamed.fieldNames())
        .toIterable()
        .containsExactly(
            "model",
            "messages",
            "stream",
            "stream_options",
            "max_tokens",
            "temperature",
            "top_p",
            // our model service's token ids, which a continuation on another replica starts from
            "return_token_ids");
  }

  @Test
  void logprobsFalseIsPassedOnAsSentWithNoEntriesBack() throws Exception {
    JsonNode answer = body(post("/v1/chat/completions", chat(false, ",\"logprobs\":false")));
    assertThat(answer.at("/choices/0/message/content").asText()).isEqualTo("Hello, world!");
    assertThat(answer.at("/choices/0").has("logprobs")).isFalse();
    JsonNode upstream = upstreamRequest(0);
    assertThat(upstream.get("logprobs").asBoolean(true)).isFalse();
    assertThat(upstream.has("top_logprobs")).isFalse();
  }

  @Test
  void aStreamServedFromAWholeUpstreamReplyKeepsItsLogprobs() throws Exception {
    try (Response on = put("/admin/switches/streaming_off", "{\"enabled\":true}")) {
      assertThat(on.code()).as(on.peekBody(2000).string()).isEqualTo(200);
    }
    try (SseClient stream =
        postStream("/v1/chat/completions", chat(true, ",\"logprobs\":true,\"top_logprobs\":1"))) {
      List<Event> events = stream.rest();
      assertThat(events).hasSize(2); // the whole text with its finish reason, then [DONE]
      JsonNode choice = Json.parse(events.get(0).data()).at("/choices/0");
      assertThat(choice.at("/delta/content").asText()).isEqualTo("Hello, world!");
      assertThat(tokens(choice.at("/logprobs/content")))
          .containsExactly("Hello", ",", " world", "!");
    }
    assertThat(upstreamRequest(0).get("stream").asBoolean()).isFalse();
    assertThat(upstreamRequest(0).get("top_logprobs").asInt()).isEqualTo(1);
  }
}
