package io.selfhosted.gateway.upstream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.selfhosted.gateway.support.FakeModelService;
import io.selfhosted.gateway.support.Json;
import io.selfhosted.gateway.support.TestProperties;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import mockwebserver3.MockResponse;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * What other OpenAI-compatible engines do differently from our model service, and what the relay
 * makes of it: every reply completes with its text, a finish reason and usage.
 */
class EngineToleranceTests {

  private static final ChatCall CALL =
      new ChatCall(
          "demo-model",
          List.of(new ChatCall.Message("user", "你好")),
          16,
          0.0,
          1.0,
          List.of(),
          null,
          true);

  private final FakeModelService engine = new FakeModelService();
  private ModelServiceClient client;
  private HealthChecks checks;
  private UpstreamPool pool;
  private UpstreamStreams streams;

  private void start(String settings) {
    UpstreamProperties properties =
        TestProperties.upstreams(List.of(engine.url() + settings), Duration.ofHours(1));
    client = new ModelServiceClient(properties);
    SimpleMeterRegistry meters = new SimpleMeterRegistry();
    Breakers breakers = new Breakers(TestProperties.breakers(), meters);
    pool = new UpstreamPool(properties, UpstreamResolver.SYSTEM, breakers, meters);
    checks = new HealthChecks(pool, client, properties);
    streams = new UpstreamStreams(pool, client, new UpstreamWire(new ObjectMapper()), breakers);
  }

  @AfterEach
  void tearDown() {
    if (pool != null) {
      checks.destroy();
      client.destroy();
    }
    engine.close();
  }

  private List<String> run(MockResponse answer, boolean whole) throws InterruptedException {
    engine.enqueue(answer);
    Recorder recorder = new Recorder();
    streams.prepare(CALL, "req-1", recorder, whole).start();
    return recorder.drainUntilEnd();
  }

  private static String data(String json) {
    return "data: " + json + "\n\n";
  }

  private static String roleChunk() {
    return "{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\","
        + "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"},\"finish_reason\":null}]}";
  }

  /** Content and the finish reason in one chunk, usage on it too when given. */
  private static String lastChunk(String content, String usage) {
    return "{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\","
        + "\"choices\":[{\"index\":0,\"delta\":{\"content\":"
        + Json.quote(content)
        + "},\"finish_reason\":\"stop\"}]"
        + (usage == null ? "" : ",\"usage\":" + usage)
        + "}";
  }

  @Test
  void aStreamThatEndsAfterItsFinishReasonWithoutDoneIsComplete() throws Exception {
    start("#engine=transformers");
    // transformers serve: role-less content chunks, finish reason and usage on the last one, EOF.
    List<String> calls =
        run(
            FakeModelService.sse(
                data(FakeModelService.chunk("你好", null))
                    + data(
                        lastChunk(
                            "!",
                            "{\"prompt_tokens\":9,\"completion_tokens\":2,\"total_tokens\":11}"))),
            false);
    assertThat(calls)
        .containsExactly("open", "text:你好", "text:!|finish:stop|usage:9+2", "complete");
  }

  @Test
  void aStreamThatEndsWithoutAFinishReasonIsStillBroken() throws Exception {
    start("#engine=vllm");
    List<String> calls = run(FakeModelService.sse(data(FakeModelService.chunk("你好", null))), false);
    assertThat(calls).containsExactly("open", "text:你好", "error:CONNECTION:after-first");
  }

  @Test
  void withoutAUsageChunkTheGatewayEstimatesUsageAndSaysSo() throws Exception {
    start("#engine=openai");
    Recorder recorder = new Recorder();
    engine.enqueue(
        FakeModelService.sse(
            data(roleChunk())
                + data(FakeModelService.chunk("你好", null))
                + data(FakeModelService.chunk("世界", null))
                + data(FakeModelService.chunk(null, "stop"))
                + "data: [DONE]\n\n"));
    streams.prepare(CALL, "req-1", recorder, false).start();
    assertThat(recorder.drainUntilEnd())
        .containsExactly(
            "open", "role-only", "text:你好", "text:世界", "finish:stop", "usage:6+4", "complete");
    Chunk usage = recorder.last(c -> c.usage() != null);
    assertThat(usage.usageOnly()).isTrue();
    assertThat(usage.raw().path("usage").path("estimated").asBoolean()).isTrue();
    assertThat(usage.raw().path("usage").path("total_tokens").asInt()).isEqualTo(10);
    assertThat(usage.id("none")).isEqualTo("chatcmpl-1");
  }

  @Test
  void aUsageChunkWithEmptyChoicesIsTheReportedUsage() throws Exception {
    start("#engine=vllm");
    List<String> calls =
        run(
            FakeModelService.sse(
                data(roleChunk())
                    + data(lastChunk("Hi", null))
                    + data(FakeModelService.usageChunk(5, 1))),
            false);
    assertThat(calls)
        .containsExactly("open", "role-only", "text:Hi|finish:stop", "usage:5+1", "complete");
  }

  @Test
  void aWholeReplyWithoutUsageGetsAnEstimate() throws Exception {
    start("#engine=tgi");
    List<String> calls =
        run(
            new MockResponse.Builder()
                .addHeader("Content-Type", "application/json")
                .body(
                    "{\"id\":\"x\",\"object\":\"chat.completion\",\"created\":1,\"model\":\"m\","
                        + "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
                        + "\"content\":\"Hello there\"},\"finish_reason\":\"length\"}]}")
                .build(),
            true);
    assertThat(calls)
        .containsExactly("open", "text:Hello there|finish:length", "usage:6+4", "complete");
  }

  @Test
  void anEngineIsProbedAtItsOwnHealthPath() {
    engine.setReadyPath("/health");
    start("#engine=vllm");
    await().until(() -> engine.chatRequestCount() == 0 && pool.replicas().get(0).isHealthy());
    engine.setReady(503);
    checks.checkAll();
    await().until(() -> !pool.replicas().get(0).isHealthy());
    engine.setReady(200);
    checks.checkAll();
    await().until(() -> pool.replicas().get(0).isHealthy());
  }

  @Test
  void anotherEngineGetsItsModelNameItsTokenAndNoExtensions() throws Exception {
    start("#engine=vllm&model=Qwen/Qwen2.5-0.5B-Instruct&token=vllm-key");
    run(FakeModelService.stream("Hi"), false);
    var request = engine.chatRequests().get(0);
    var body = Json.parse(request.getBody().utf8());
    assertThat(body.path("model").asText()).isEqualTo("Qwen/Qwen2.5-0.5B-Instruct");
    assertThat(body.has("ignore_eos")).isFalse();
    assertThat(request.getHeaders().get("Authorization")).isEqualTo("Bearer vllm-key");
  }

  @Test
  void ourOwnServiceStillGetsItsExtensionsAndTheSharedToken() throws Exception {
    start("");
    run(FakeModelService.stream("Hi"), false);
    var request = engine.chatRequests().get(0);
    var body = Json.parse(request.getBody().utf8());
    assertThat(body.path("model").asText()).isEqualTo("demo-model");
    assertThat(body.path("ignore_eos").asBoolean()).isTrue();
    assertThat(request.getHeaders().get("Authorization")).isEqualTo("Bearer internal-token");
  }

  private static final ChatCall TOOL_CALL =
      new ChatCall(
          "demo-model",
          List.of(
              new ChatCall.Message("user", "Weather in Paris?"),
              new ChatCall.Message(
                  "assistant",
                  null,
                  Json.parse(
                      "[{\"id\":\"c0\",\"type\":\"function\",\"function\":{\"name\":"
                          + "\"get_weather\",\"arguments\":\"{}\"}}]"),
                  null),
              new ChatCall.Message("tool", "sunny", null, "c0")),
          64,
          0.0,
          1.0,
          List.of(),
          null,
          true,
          null,
          null,
          new ChatCall.ReplyOptions(
              Json.parse(
                  "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
                      + "\"parameters\":{\"type\":\"object\"}}}]"),
              Json.parse("{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"}}"),
              true,
              Json.parse("{\"type\":\"json_object\"}"),
              2));

  @Test
  void aPeerEngineGetsToolsToolChoiceResponseFormatNAndToolMessagesAsSent() throws Exception {
    start("#engine=vllm&model=Qwen/Qwen2.5-0.5B-Instruct");
    engine.enqueue(FakeModelService.stream("Hi"));
    Recorder recorder = new Recorder();
    streams.prepare(TOOL_CALL, "req-1", recorder, false).start();
    recorder.drainUntilEnd();
    var body = Json.parse(engine.chatRequests().get(0).getBody().utf8());
    assertThat(body.get("tools")).isEqualTo(TOOL_CALL.options().tools());
    assertThat(body.get("tool_choice")).isEqualTo(TOOL_CALL.options().toolChoice());
    assertThat(body.get("parallel_tool_calls").asBoolean()).isTrue();
    assertThat(body.get("response_format")).isEqualTo(TOOL_CALL.options().responseFormat());
    assertThat(body.get("n").asInt()).isEqualTo(2);
    assertThat(body.at("/messages/1").has("content")).isFalse();
    assertThat(body.at("/messages/1/tool_calls"))
        .isEqualTo(TOOL_CALL.messages().get(1).toolCalls());
    assertThat(body.at("/messages/2/tool_call_id").asText()).isEqualTo("c0");
    assertThat(body.has("ignore_eos")).as("still no extensions").isFalse();
  }

  @Test
  void aPeerEnginesToolCallAndChoicesAreRelayedAndItsUsageEstimateCountsTheArguments()
      throws Exception {
    start("#engine=vllm");
    // vLLM's way: several choices' fragments, one chunk carrying two choices, no usage chunk.
    engine.enqueue(
        FakeModelService.sse(
            data(
                    FakeModelService.choiceChunk(
                        0,
                        FakeModelService.toolCallDelta(0, "c1", "get_weather", "{\"city\":"),
                        null))
                + data(
                    "{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,"
                        + "\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":"
                        + "[{\"index\":0,\"function\":{\"arguments\":\"\\\"Paris, France\\\"}\"}}]},"
                        + "\"finish_reason\":\"tool_calls\"},{\"index\":1,\"delta\":"
                        + "{\"content\":\"Sunny\"},\"finish_reason\":\"stop\"}]}")
                + "data: [DONE]\n\n"));
    Recorder recorder = new Recorder();
    streams.prepare(TOOL_CALL, "req-1", recorder, false).start();
    assertThat(recorder.drainUntilEnd())
        .containsExactly(
            "open",
            "choice:0|calls:0=get_weather({\"city\":)",
            "choice:0|calls:0=(\"Paris, France\"})|finish:tool_calls",
            "choice:1|text:Sunny|finish:stop",
            // (11 + 8 + 16 + 5 bytes of name, arguments and text) / 3, rounded up
            "usage:" + TokenEstimate.prompt(TOOL_CALL) + "+14",
            "complete");
  }

  @Test
  void aWholeReplyWithToolCallsAndTwoChoicesComesAsTheChunksAStreamWouldHave() throws Exception {
    start("#engine=vllm");
    List<String> calls =
        run(
            new MockResponse.Builder()
                .addHeader("Content-Type", "application/json")
                .body(
                    "{\"id\":\"x\",\"object\":\"chat.completion\",\"created\":1,\"model\":\"m\","
                        + "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
                        + "\"content\":null,\"tool_calls\":[{\"id\":\"a\",\"type\":\"function\","
                        + "\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}},{\"id\":\"b\","
                        + "\"type\":\"function\",\"function\":{\"name\":\"g\",\"arguments\":"
                        + "\"[1]\"}}]},\"finish_reason\":\"tool_calls\"},{\"index\":1,\"message\":"
                        + "{\"role\":\"assistant\",\"content\":\"No tools.\"},\"finish_reason\":"
                        + "\"stop\"}],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":9,"
                        + "\"total_tokens\":14}}")
                .build(),
            true);
    assertThat(calls)
        .containsExactly(
            "open",
            "role-only", // choice 0's message: no text, then one chunk per call
            "choice:0|calls:0=f({})",
            "choice:0|calls:1=g([1])|finish:tool_calls",
            "choice:1|text:No tools.|finish:stop",
            "usage:5+9",
            "complete");
  }

  /** Records callbacks in order; a chunk is described by everything it carries. */
  static final class Recorder implements UpstreamListener {
    final BlockingQueue<String> calls = new LinkedBlockingQueue<>();
    final List<Chunk> chunks = new java.util.concurrent.CopyOnWriteArrayList<>();

    @Override
    public void onOpen(String replica) {
      calls.add("open");
    }

    @Override
    public void onChunk(Chunk chunk) {
      chunks.add(chunk);
      List<String> parts = new ArrayList<>();
      if (chunk.choice() != 0) {
        parts.add("choice:" + chunk.choice());
      }
      if (!chunk.toolCalls().isEmpty()) {
        if (chunk.choice() == 0) {
          parts.add("choice:0");
        }
        StringBuilder calls = new StringBuilder("calls:");
        for (Chunk.ToolCallPiece piece : chunk.toolCalls()) {
          calls
              .append(piece.index())
              .append('=')
              .append(piece.name() == null ? "" : piece.name())
              .append('(')
              .append(piece.arguments())
              .append(')');
        }
        parts.add(calls.toString());
      }
      if (!chunk.text().isEmpty()) {
        parts.add("text:" + chunk.text());
      }
      if (chunk.finishReason() != null) {
        parts.add("finish:" + chunk.finishReason());
      }
      if (chunk.usage() != null) {
        parts.add("usage:" + chunk.usage().promptTokens() + "+" + chunk.usage().completionTokens());
      }
      calls.add(parts.isEmpty() ? "role-only" : String.join("|", parts));
    }

    @Override
    public void onComplete() {
      calls.add("complete");
    }

    @Override
    public void onError(UpstreamError error, boolean afterFirstChunk) {
      calls.add("error:" + error.kind() + (afterFirstChunk ? ":after-first" : ":before-first"));
    }

    Chunk last(java.util.function.Predicate<Chunk> which) {
      Chunk found = null;
      for (Chunk chunk : chunks) {
        if (which.test(chunk)) {
          found = chunk;
        }
      }
      assertThat(found).isNotNull();
      return found;
    }

    List<String> drainUntilEnd() throws InterruptedException {
      List<String> seen = new ArrayList<>();
      while (true) {
        String call = calls.poll(20, TimeUnit.SECONDS);
        assertThat(call).as("expected another callback after " + seen).isNotNull();
        seen.add(call);
        if (call.equals("complete") || call.startsWith("error:")) {
          assertThat(calls.poll(100, TimeUnit.MILLISECONDS)).as("nothing after the end").isNull();
          return seen;
        }
      }
    }
  }
}
