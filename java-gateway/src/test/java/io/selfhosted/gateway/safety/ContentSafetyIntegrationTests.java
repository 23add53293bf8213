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
