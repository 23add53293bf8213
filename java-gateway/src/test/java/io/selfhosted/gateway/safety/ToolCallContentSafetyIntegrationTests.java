package io.selfhosted.gateway.safety;

import static io.selfhosted.gateway.support.FakeModelService.choiceChunk;
import static io.selfhosted.gateway.support.FakeModelService.data;
import static io.selfhosted.gateway.support.FakeModelService.toolCallDelta;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.selfhosted.gateway.support.FakeModelService;
import io.selfhosted.gateway.support.FakeModelService.LiveStream;
import io.selfhosted.gateway.support.GatewayIntegrationTest;
import io.selfhosted.gateway.support.Json;
import io.selfhosted.gateway.support.SseClient;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;
import org.springframework.test.context.TestPropertySource;

/**
 * The content check over tool calls and several choices: arguments and names are scanned like text,
 * each call and each choice on its own. The same rules and context as {@link
 * ContentSafetyIntegrationTests} (the longest rule holds back 15 characters).
 */
@TestPropertySource(properties = "gateway.content.rules-file=src/test/resources/content-rules.yml")
class ToolCallContentSafetyIntegrationTests extends GatewayIntegrationTest {

  private static final String TOOLS =
      "[{\"type\":\"function\",\"function\":{\"name\":\"send_note\",\"parameters\":"
          + "{\"type\":\"object\",\"properties\":{\"note\":{\"type\":\"string\"}}}}}]";

  private static String chat(boolean stream, String extra) {
    return "{\"model\":\"demo-model\",\"stream\":"
        + stream
        + extra
        + ",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
  }

  /** What a client gathers from a /v1 stream, per choice. */
  private static final class Seen {
    final Map<Integer, StringBuilder> text = new TreeMap<>();
    final Map<String, StringBuilder> arguments = new TreeMap<>(); // "choice/call"
    final Map<String, String> names = new TreeMap<>();
    final Map<Integer, String> finish = new TreeMap<>();
    final List<String> callOrder = new ArrayList<>();

    Seen(List<SseClient.Event> events) {
      assertThat(events.get(events.size() - 1).data()).isEqualTo("[DONE]");
      for (SseClient.Event event : events.subList(0, events.size() - 1)) {
        for (JsonNode choice : Json.parse(event.data()).path("choices")) {
          int index = choice.get("index").asInt();
          text.computeIfAbsent(index, i -> new StringBuilder())
              .append(choice.at("/delta/content").asText(""));
          JsonNode calls = choice.at("/delta/tool_calls");
          assertThat(calls.size())
              .as("one tool call per chunk, as OpenAI streams them")
              .isLessThan(2);
          for (JsonNode call : calls) {
            String key = index + "/" + call.get("index").asInt();
            callOrder.add(key);
            arguments
                .computeIfAbsent(key, k -> new StringBuilder())
                .append(call.at("/function/arguments").asText(""));
            if (call.at("/function/name").isTextual()) {
              names.put(key, call.at("/function/name").asText());
            }
          }
          if (choice.path("finish_reason").isTextual()) {
            finish.put(index, choice.get("finish_reason").asText());
          }
        }
      }
    }
  }

  @Test
  void aBannedWordSplitAcrossArgumentFragmentsNeverReachesTheClientAndStopsTheModel()
      throws Exception {
    LiveStream live = new LiveStream();
    UPSTREAM.enqueue(live);
    Seen seen;
    try (SseClient stream = postStream("/v1/chat/completions", chat(true, ",\"tools\":" + TOOLS))) {
      live.raw(data(choiceChunk(0, toolCallDelta(0, "call_1", "send_note", ""), null)));
      live.raw(
          data(
              choiceChunk(0, toolCallDelta(0, null, null, "{\"note\":\"the plan is INTER"), null)));
      live.raw(data(choiceChunk(0, toolCallDelta(0, null, null, "NAL-ONLY: share it\"}"), null)));
      seen = new Seen(stream.rest());
    }
    assertThat(seen.names).containsEntry("0/0", "send_note");
    assertThat(seen.arguments.get("0/0").toString())
        .as("released: what no rule can still complete")
        .startsWith("{\"note\":")
        .doesNotContain("INTER");
    assertThat(seen.finish).containsExactly(Map.entry(0, "content_filter"));
    assertThat(live.awaitClientGone()).as("the upstream generation was cancelled").isTrue();
  }

  @Test
  void aWholeReplyWithABannedCodeInItsArgumentsEndsWithContentFilter() throws Exception {
    UPSTREAM.setDefault(
        r ->
            FakeModelService.toolCall(
                r, "call_9", "send_note", "{\"note\":\"use secret-code-", "1234 now\"}"));
    JsonNode answer = body(post("/v1/chat/completions", chat(false, ",\"tools\":" + TOOLS)));
    JsonNode choice = answer.at("/choices/0");
    assertThat(choice.get("finish_reason").asText()).isEqualTo("content_filter");
    assertThat(choice.at("/message/tool_calls/0/function/name").asText()).isEqualTo("send_note");
    assertThat(choice.toString()).doesNotContain("secret-code");
  }

  @Test
  void cleanCallsPassWholeOneCallAChunkTheHeldTailBeforeTheNextCall() throws Exception {
    String first = "{\"note\":\"meet at noon in the main hall\"}";
    String second = "{\"note\":\"bring the INTERNAL memo\"}";
    UPSTREAM.enqueue(
        FakeModelService.sse(
            data(choiceChunk(0, "{\"content\":\"Sending two notes.\"}", null))
                + data(choiceChunk(0, toolCallDelta(0, "call_a", "send_note", ""), null))
                + data(choiceChunk(0, toolCallDelta(0, null, null, first.substring(0, 20)), null))
                + data(choiceChunk(0, toolCallDelta(0, null, null, first.substring(20)), null))
                + data(choiceChunk(0, toolCallDelta(1, "call_b", "send_note", ""), null))
                + data(choiceChunk(0, toolCallDelta(1, null, null, second), null))
                + data(choiceChunk(0, "{}", "tool_calls"))
                + data(FakeModelService.usageChunk(7, 9))
                + "data: [DONE]\n\n"));
    Seen seen;
    try (SseClient stream = postStream("/v1/chat/completions", chat(true, ",\"tools\":" + TOOLS))) {
      seen = new Seen(stream.rest());
    }
    assertThat(seen.text.get(0).toString()).isEqualTo("Sending two notes.");
    assertThat(seen.arguments.get("0/0").toString()).isEqualTo(first);
    assertThat(seen.arguments.get("0/1").toString()).isEqualTo(second);
    assertThat(seen.names).containsEntry("0/0", "send_note").containsEntry("0/1", "send_note");
    assertThat(seen.callOrder.lastIndexOf("0/0"))
        .as("every fragment of the first call before the second call starts")
        .isLessThan(seen.callOrder.indexOf("0/1"));
    assertThat(seen.finish).containsExactly(Map.entry(0, "tool_calls"));
  }

  @Test
  void eachChoiceIsScannedOnItsOwn() throws Exception {
    // Read as one text, the two choices would say INTERNAL-ONLY; each alone says nothing banned.
    UPSTREAM.enqueue(
        FakeModelService.sse(
            data(choiceChunk(0, "{\"content\":\"The plan is INTER\"}", null))
                + data(choiceChunk(1, "{\"content\":\"NAL-ONLY for now\"}", null))
                + data(choiceChunk(0, "{\"content\":\"ESTING.\"}", "stop"))
                + data(choiceChunk(1, "{\"content\":\".\"}", "stop"))
                + data(FakeModelService.usageChunk(7, 9))
                + "data: [DONE]\n\n"));
    Seen clean;
    try (SseClient stream = postStream("/v1/chat/completions", chat(true, ",\"n\":2"))) {
      clean = new Seen(stream.rest());
    }
    assertThat(clean.text.get(0).toString()).isEqualTo("The plan is INTERESTING.");
    assertThat(clean.text.get(1).toString()).isEqualTo("NAL-ONLY for now.");
    assertThat(clean.finish).containsEntry(0, "stop").containsEntry(1, "stop");

    // A banned word in the second choice ends every choice still open.
    LiveStream live = new LiveStream();
    UPSTREAM.enqueue(live);
    Seen blocked;
    try (SseClient stream = postStream("/v1/chat/completions", chat(true, ",\"n\":2"))) {
      live.raw(data(choiceChunk(0, "{\"content\":\"All clear here, nothing to see.\"}", null)));
      live.raw(data(choiceChunk(1, "{\"content\":\"The plan is INTER\"}", null)));
      live.raw(data(choiceChunk(1, "{\"content\":\"NAL-ONLY, do not share\"}", null)));
      blocked = new Seen(stream.rest());
    }
    assertThat(blocked.text.get(1).toString()).doesNotContain("INTER");
    assertThat(blocked.finish)
        .containsEntry(0, "content_filter")
        .containsEntry(1, "content_filter");
    assertThat(live.awaitClientGone()).isTrue();
  }
}
