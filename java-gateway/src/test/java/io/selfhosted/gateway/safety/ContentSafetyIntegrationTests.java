package io.selfhosted.gateway.safety;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.selfhosted.gateway.support.FakeModelService;
import io.selfhosted.gateway.support.FakeModelService.LiveStream;
import io.selfhosted.gateway.support.GatewayIntegrationTest;
import io.selfhosted.gateway.support.Json;
import io.selfhosted.gateway.support.SseClient;
import java.util.List;
import okhttp3.Response;
import org.junit.jupiter.api.Test;
import org.springframework.test.context.TestPropertySource;

/**
 * Content rules end to end: prompts refused, replies cut before a banned text reaches anyone. Its
 * own context: rules hold back the last characters of a stream, which other suites do not expect.
 */
@TestPropertySource(properties = "gateway.content.rules-file=src/test/resources/content-rules.yml")
class ContentSafetyIntegrationTests extends GatewayIntegrationTest {

  private static String chat(String content, boolean stream) {
    return "{\"model\":\"demo-model\",\"stream\":"
        + stream
        + ",\"messages\":[{\"role\":\"user\",\"content\":"
        + Json.quote(content)
        + "}]}";
  }

  @Test
  void promptsWithBannedTextOrItsDisguisesAreRefusedBeforeTheModel() throws Exception {
    for (String prompt :
        List.of(
            "把内部机密发给我",
            "把内 部 机 密发给我",
            "show me the ＩＮＴＥＲＮＡＬ-ＯＮＬＹ notes",
            "internal\u200b-only please",
            "my secret-code-1234")) {
      try (Response response = post("/v1/chat/completions", chat(prompt, false))) {
        JsonNode error = Json.parse(response.body().string()).get("error");
        assertThat(response.code()).as(prompt).isEqualTo(400);
        assertThat(error.get("code").asText()).isEqualTo("content_filter");
        assertThat(error.get("message").asText()).doesNotContain("内部机密");
      }
    }
    try (Response response =
        post("/api/chat/messages", "{\"model\":\"demo-model\",\"query\":\"内部 机密?\"}")) {
      assertThat(response.code()).isEqualTo(400);
    }
    assertThat(UPSTREAM.chatRequestCount()).isZero();
  }

  @Test
  void aBannedWordSplitAcrossChunksNeverReachesTheClientAndStopsTheModel() throws Exception {
    LiveStream live = new LiveStream();
    UPSTREAM.enqueue(live);
    try (SseClient stream = postStream("/v1/chat/completions", chat("hi", true))) {
      live.token("The plan for the next quarter is INTER");
      live.token("NAL-ONLY: do not share");
      List<SseClient.Event> events = stream.rest();
      StringBuilder text = new StringBuilder();
      String finish = null;
      for (SseClient.Event event : events) {
        if (event.data().equals("[DONE]")) {
          continue;
        }
        JsonNode choice = Json.parse(event.data()).at("/choices/0");
        text.append(choice.at("/delta/content").asText(""));
        if (choice.path("finish_reason").isTextual()) {
          finish = choice.get("finish_reason").asText();
        }
      }
      // Released: all but what a match could still need (the longest rule holds back 15).
      assertThat(text.toString())
          .startsWith("The plan for the")
          .doesNotContain("INTER")
          .isEqualTo("The plan for the next quarter is INTER".substring(0, text.length()));
      assertThat(finish).isEqualTo("content_filter");
      assertThat(events.get(events.size() - 1).data()).isEqualTo("[DONE]");
    }
    assertThat(live.awaitClientGone()).as("the upstream generation was cancelled").isTrue();
  }

  @Test
  void aChineseBannedWordInAProductStreamIsCutAndNotStored() throws Exception {
    UPSTREAM.enqueue(
        FakeModelService.stream("这份文件是我们公司今年第三季度的销售总结报告，", "它属于", "内部", "机", "密，请勿外传", "。"));
    String messageId;
    String conversationId;
    try (SseClient stream =
        postStream("/api/chat/messages", "{\"model\":\"demo-model\",\"query\":\"文件是什么？\"}")) {
      messageId = stream.response().header("X-Message-Id");
      conversationId = stream.response().header("X-Conversation-Id");
      List<SseClient.Event> events = stream.rest();
      StringBuilder text = new StringBuilder();
      for (SseClient.Event event : events) {
        if ("message".equals(event.event())) {
          text.append(Json.parse(event.data()).get("text").asText());
        }
      }
      assertThat(text.toString()).startsWith("这份文件是").doesNotContain("内部机");
      SseClient.Event finish = events.get(events.size() - 1);
      assertThat(finish.event()).isEqualTo("finish");
      assertThat(Json.parse(finish.data()).get("finish_reason").asText())
          .isEqualTo("content_filter");
    }
    JsonNode messages = body(get("/api/conversations/" + conversationId + "/messages"));
    assertThat(messages.toString()).contains(messageId).doesNotContain("内部机密");
  }

  @Test
  void cleanRepliesPassUnchanged() throws Exception {
    UPSTREAM.enqueue(FakeModelService.stream("内部", "会议", "纪要 INTERNAL", " memo"));
    try (Response response = post("/v1/chat/completions", chat("hi", false))) {
      JsonNode body = Json.parse(response.body().string());
      assertThat(body.at("/choices/0/message/content").asText()).isEqualTo("内部会议纪要 INTERNAL memo");
      assertThat(body.at("/choices/0/finish_reason").asText()).isEqualTo("stop");
    }
  }

  private static String chatWithLogprobs(boolean stream) {
    return chat("hi", stream)
        .replace("\"stream\":", "\"logprobs\":true,\"top_logprobs\":1,\"stream\":");
  }

  private static final String[] CLEAN = {
    "Our quarterly report is ready and ", "it shows", " growth in every region", "."
  };

  private static final String[] BLOCKED = {
    "Our quarterly report is ready. ",
    "The plan for the next quarter is INTER",
    "NAL-ONLY: do not share"
  };

  /** The text and the logprobs tokens of a /v1 stream, checked event by event as they came. */
  private record Relayed(String text, List<String> tokens, int contentEvents, String finish) {}

  private static Relayed relayed(List<SseClient.Event> events) {
    StringBuilder text = new StringBuilder();
    StringBuilder joined = new StringBuilder();
    List<String> tokens = new java.util.ArrayList<>();
    int contentEvents = 0;
    String finish = null;
    for (SseClient.Event event : events) {
      if (event.data().equals("[DONE]")) {
        continue;
      }
      JsonNode choice = Json.parse(event.data()).at("/choices/0");
      if (!choice.at("/delta/content").asText("").isEmpty()) {
        contentEvents++;
      }
      text.append(choice.at("/delta/content").asText(""));
      for (JsonNode entry : choice.at("/logprobs/content")) {
        tokens.add(entry.get("token").asText());
        joined.append(entry.get("token").asText());
      }
      // An entry never comes before the text it stands for.
      assertThat(text.toString()).startsWith(joined.toString());
      if (choice.path("finish_reason").isTextual()) {
        finish = choice.get("finish_reason").asText();
      }
    }
    return new Relayed(text.toString(), tokens, contentEvents, finish);
  }

  @Test
  void heldBackTextKeepsItsLogprobsWhenItIsReleased() throws Exception {
    UPSTREAM.setDefault(r -> FakeModelService.answer(r, CLEAN));
    try (SseClient stream = postStream("/v1/chat/completions", chatWithLogprobs(true))) {
      List<SseClient.Event> events = stream.rest();
      Relayed relayed = relayed(events);
      assertThat(relayed.text()).isEqualTo(String.join("", CLEAN));
      assertThat(relayed.tokens()).containsExactly(CLEAN);
      assertThat(relayed.finish()).isEqualTo("stop");
      JsonNode first = Json.parse(events.get(0).data()).at("/choices/0");
      assertThat(CLEAN[0])
          .as("the rules held text back")
          .startsWith(first.at("/delta/content").asText())
          .isNotEqualTo(first.at("/delta/content").asText());
    }
    JsonNode whole = body(post("/v1/chat/completions", chatWithLogprobs(false)));
    assertThat(whole.at("/choices/0/message/content").asText()).isEqualTo(String.join("", CLEAN));
    List<String> tokens = new java.util.ArrayList<>();
    whole.at("/choices/0/logprobs/content").forEach(e -> tokens.add(e.get("token").asText()));
    assertThat(tokens).containsExactly(CLEAN);
    assertThat(
            Json.parse(UPSTREAM.chatRequests().get(0).getBody().utf8()).get("top_logprobs").asInt())
        .isEqualTo(1);
  }

  @Test
  void theLogprobsOfBlockedTextAreNeverRelayed() throws Exception {
    LiveStream live = new LiveStream();
    UPSTREAM.enqueue(live);
    try (SseClient stream = postStream("/v1/chat/completions", chatWithLogprobs(true))) {
      for (String token : BLOCKED) {
        live.token(token, 1);
      }
      Relayed relayed = relayed(stream.rest());
      assertThat(relayed.finish()).isEqualTo("content_filter");
      assertThat(relayed.text()).startsWith(BLOCKED[0] + "The plan").doesNotContain("INTER");
      assertThat(relayed.tokens()).containsExactly(BLOCKED[0]);
    }
    assertThat(live.awaitClientGone()).isTrue();

    UPSTREAM.setDefault(r -> FakeModelService.answer(r, BLOCKED));
    JsonNode whole = body(post("/v1/chat/completions", chatWithLogprobs(false)));
    assertThat(whole.at("/choices/0/finish_reason").asText()).isEqualTo("content_filter");
    assertThat(whole.at("/choices/0/message/content").asText())
        .startsWith(BLOCKED[0])
        .doesNotContain("INTER");
    JsonNode entries = whole.at("/choices/0/logprobs/content");
    assertThat(entries).hasSize(1);
    assertThat(entries.get(0).get("token").asText()).isEqualTo(BLOCKED[0]);
    assertThat(entries.toString()).doesNotContain("INTER");
  }

  @Test
  void adminsSeeTheRulesInForceAndUsersMayNot() throws Exception {
    JsonNode rules = body(get("/admin/content/rules"));
    assertThat(rules.toString()).contains("internal-markers").doesNotContain("内部机密");
    try (Response reload = post("/admin/content/rules/reload", "")) {
      assertThat(reload.code()).isEqualTo(200);
    }
    Key user = createKey("{\"name\":\"user\"}");
    try (Response response = getAs(user.secret(), "/admin/content/rules")) {
      assertThat(response.code()).isEqualTo(403);
    }
  }
}
