package io.selfhosted.gateway.upstream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.selfhosted.gateway.support.FakeModelService;
import io.selfhosted.gateway.support.FakeModelService.LiveStream;
import io.selfhosted.gateway.support.Json;
import io.selfhosted.gateway.support.TestProperties;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Continuation failover against fake replicas: a stream whose replica fails after the first token
 * goes on from another replica, spliced into the same stream; where it cannot, the clean error
 * stays.
 */
class ContinuationTests {

  private static final ChatCall CALL =
      new ChatCall(
          "demo-model",
          List.of(new ChatCall.Message("user", "hi")),
          16,
          0.0,
          1.0,
          List.of(),
          7L,
          null);

  private final List<AutoCloseable> closeables = new ArrayList<>();
  private final FakeModelService a = track(new FakeModelService());
  private final FakeModelService b = track(new FakeModelService());
  private ModelServiceClient client;
  private UpstreamPool pool;
  private HealthChecks checks;
  private UpstreamStreams streams;
  private Breakers breakers;

  private <T extends AutoCloseable> T track(T closeable) {
    closeables.add(closeable);
    return closeable;
  }

  private void pool(ContinuationProperties continuation, String... urls) {
    UpstreamProperties properties = TestProperties.upstreams(List.of(urls), Duration.ofHours(1));
    client = new ModelServiceClient(properties);
    SimpleMeterRegistry meters = new SimpleMeterRegistry();
    breakers = new Breakers(TestProperties.breakers(), meters);
    pool = new UpstreamPool(properties, UpstreamResolver.SYSTEM, breakers, meters);
    checks = new HealthChecks(pool, client, properties);
    streams =
        new UpstreamStreams(
            pool, client, new UpstreamWire(new ObjectMapper()), breakers, continuation);
    await().until(() -> pool.replicas().stream().allMatch(Replica::isHealthy));
  }

  private void pool(String... urls) {
    pool(ContinuationProperties.DEFAULTS, urls);
  }

  @AfterEach
  void tearDown() throws Exception {
    if (pool != null) {
      checks.destroy();
      client.destroy();
      streams.destroy();
    }
    for (AutoCloseable c : closeables) {
      c.close();
    }
  }

  // ---- our model service's chunks, with token ids ----------------------------------------------

  private static String chunk(String id, String delta, String tokenIds, String finishReason) {
    return FakeModelService.data(
        "{\"id\":\""
            + id
            + "\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"demo-model\","
            + "\"choices\":[{\"index\":0,\"delta\":"
            + delta
            + ",\"finish_reason\":"
            + (finishReason == null ? "null" : Json.quote(finishReason))
            + ",\"logprobs\":null,\"token_ids\":"
            + tokenIds
            + "}],\"usage\":null}");
  }

  private static String opening(String id) {
    return FakeModelService.data(
        "{\"id\":\""
            + id
            + "\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"demo-model\","
            + "\"prompt_token_ids\":[5,6,7],\"choices\":[{\"index\":0,\"delta\":{\"role\":"
            + "\"assistant\",\"content\":\"\"},\"finish_reason\":null,\"logprobs\":null,"
            + "\"token_ids\":[]}],\"usage\":null}");
  }

  private static String token(String id, String text, int... ids) {
    StringBuilder list = new StringBuilder("[");
    for (int i = 0; i < ids.length; i++) {
      list.append(i == 0 ? "" : ",").append(ids[i]);
    }
    return chunk(id, "{\"content\":" + Json.quote(text) + "}", list + "]", null);
  }

  /** The rest of an answer as a continuing replica sends it: opening, tokens, end, usage. */
  private static FakeModelService.LiveStream rest(String id, int completion) {
    LiveStream live = new LiveStream();
    live.raw(opening(id));
    live.raw(token(id, " world", 4));
    live.raw(token(id, "!", 5));
    live.raw(chunk(id, "{}", "[]", "stop"));
    live.raw(FakeModelService.data(FakeModelService.usageChunk(3, completion)));
    live.raw("data: [DONE]\n\n");
    return live;
  }

  /** Records callbacks in order, with the chunks as the client's stream carries them. */
  static final class Recorder implements UpstreamListener {
    final BlockingQueue<String> calls = new LinkedBlockingQueue<>();
    final List<Chunk> chunks = new ArrayList<>();

    @Override
    public void onOpen(String replica) {
      calls.add("open");
    }

    @Override
    public void onContinued(String failedReplica, UpstreamError error) {
      calls.add("continued:" + error.code());
    }

    @Override
    public void onChunk(Chunk chunk) {
      chunks.add(chunk);
      if (chunk.usageOnly()) {
        Chunk.Usage u = chunk.usage();
        calls.add("usage:" + u.promptTokens() + "+" + u.completionTokens());
      } else if (chunk.finishReason() != null) {
        calls.add("finish:" + chunk.finishReason());
      } else {
        calls.add("text:" + chunk.text());
      }
    }

    @Override
    public void onComplete() {
      calls.add("complete");
    }

    @Override
    public void onError(UpstreamError error, boolean afterFirstChunk) {
      calls.add("error:" + error.code() + (afterFirstChunk ? ":after-first" : ":before-first"));
    }

    List<String> untilEnd() throws InterruptedException {
      List<String> seen = new ArrayList<>();
      while (true) {
        String call = calls.poll(20, TimeUnit.SECONDS);
        assertThat(call).as("expected another callback").isNotNull();
        seen.add(call);
        if (call.equals("complete") || call.startsWith("error:")) {
          return seen;
        }
      }
    }
  }

  private Recorder open(ChatCall call) {
    Recorder recorder = new Recorder();
    streams.prepare(call, "req-c", recorder, false).start();
    return recorder;
  }

  private static JsonNode body(FakeModelService service, int index) {
    return Json.parse(service.chatRequests().get(index).getBody().utf8());
  }

  @Test
  void aReplicaLostMidAnswerIsContinuedFromItsTokenIdsOnAnother() throws Exception {
    pool(a.url(), b.url());
    Replica replicaA = pool.replicas().get(0);
    LiveStream first = new LiveStream();
    first.raw(opening("chatcmpl-a")).raw(token("chatcmpl-a", "Hel", 1, 2));
    first.raw(token("chatcmpl-a", "lo", 3)).breakOff();
    a.enqueue(first);
    b.enqueue(rest("chatcmpl-b", 5).response());

    Recorder recorder = open(CALL);

    // one stream: no second opening, no repeated text, the whole answer's usage
    assertThat(recorder.untilEnd())
        .containsExactly(
            "open",
            "text:",
            "text:Hel",
            "text:lo",
            "continued:upstream_unavailable",
            "text: world",
            "text:!",
            "finish:stop",
            "usage:3+5",
            "complete");
    assertThat(recorder.chunks)
        .allSatisfy(
            chunk -> {
              assertThat(chunk.id("")).isEqualTo("chatcmpl-a");
              assertThat(chunk.raw().path("choices").path(0).has("token_ids")).isFalse();
              assertThat(chunk.raw().has("prompt_token_ids")).isFalse();
            });
    JsonNode asked = body(a, 0);
    assertThat(asked.path("return_token_ids").asBoolean()).isTrue();
    assertThat(asked.has("continue_token_ids")).isFalse();
    JsonNode continued = body(b, 0);
    assertThat(continued.path("continue_token_ids").toString()).isEqualTo("[1,2,3]");
    assertThat(continued.path("max_tokens").asInt()).as("counted by the service").isEqualTo(16);
    assertThat(continued.path("seed").asLong()).isEqualTo(7L);
    assertThat(continued.path("messages").toString()).isEqualTo(asked.path("messages").toString());
    // the failure counts against the replica that failed, not the model
    assertThat(breakers.replica(replicaA).getMetrics().getNumberOfFailedCalls()).isEqualTo(1);
    assertThat(breakers.model("demo-model").getMetrics().getNumberOfFailedCalls()).isZero();
  }

  @Test
  void aReplicaThatStallsMidAnswerIsLeftAndContinued() throws Exception {
    pool(new ContinuationProperties(true, Duration.ofMillis(400)), a.url(), b.url());
    LiveStream first = new LiveStream(); // pings while idle, as a stalled stream does not
    first.raw(opening("chatcmpl-a")).raw(token("chatcmpl-a", "Hello", 1, 2, 3));
    a.enqueue(first);
    b.enqueue(rest("chatcmpl-b", 5).response());

    Recorder recorder = open(CALL);

    assertThat(recorder.untilEnd())
        .containsSubsequence(
            "text:Hello", "continued:upstream_stalled", "text: world", "text:!", "complete");
    assertThat(first.awaitClientGone()).as("the stalled stream was closed").isTrue();
  }

  @Test
  void aPeerEngineContinuesTheTextAsTheLastAssistantMessage() throws Exception {
    b.setReadyPath("/health");
    pool(a.url(), b.url() + "#engine=vllm");
    LiveStream first = new LiveStream();
    first.raw(opening("chatcmpl-a")).raw(token("chatcmpl-a", "Hel", 1, 2));
    first.raw(token("chatcmpl-a", "lo", 3)).breakOff();
    a.enqueue(first);
    b.enqueue(FakeModelService.stream(" world", "!"));

    Recorder recorder = open(CALL);

    List<String> calls = recorder.untilEnd();
    assertThat(calls).containsSubsequence("text:lo", "continued:upstream_unavailable");
    // the peer counts the earlier part as prompt; the gateway moves it to the completion
    assertThat(calls).containsSubsequence("text: world", "text:!", "usage:4+5", "complete");
    JsonNode continued = body(b, 0);
    JsonNode last = continued.path("messages").path(1);
    assertThat(last.path("role").asText()).isEqualTo("assistant");
    assertThat(last.path("content").asText()).isEqualTo("Hello");
    assertThat(continued.path("continue_final_message").asBoolean()).isTrue();
    assertThat(continued.path("add_generation_prompt").asBoolean(true)).isFalse();
    assertThat(continued.path("max_tokens").asInt()).isEqualTo(13);
    assertThat(continued.has("continue_token_ids")).isFalse();
    assertThat(continued.has("return_token_ids")).isFalse();
  }

  @Test
  void withNoReplicaLeftTheCleanErrorStays() throws Exception {
    pool(a.url());
    LiveStream first = new LiveStream();
    first.raw(opening("chatcmpl-a")).raw(token("chatcmpl-a", "Hel", 1, 2)).breakOff();
    a.enqueue(first);

    assertThat(open(CALL).untilEnd())
        .containsExactly("open", "text:", "text:Hel", "error:upstream_unavailable:after-first");
  }

  @Test
  void turnedOffTheCleanErrorStays() throws Exception {
    pool(new ContinuationProperties(false, Duration.ofSeconds(15)), a.url(), b.url());
    LiveStream first = new LiveStream();
    first.raw(opening("chatcmpl-a")).raw(token("chatcmpl-a", "Hel", 1, 2)).breakOff();
    a.enqueue(first);

    assertThat(open(CALL).untilEnd()).last().asString().endsWith("after-first");
    assertThat(body(a, 0).has("return_token_ids")).isFalse();
    assertThat(b.chatRequestCount()).isZero();
  }

  @Test
  void anAnswerWithoutTokenIdsIsNotContinuedOnOurService() throws Exception {
    pool(a.url(), b.url());
    LiveStream first = new LiveStream(); // an older model service: no token ids
    a.enqueue(first);
    first.token("Hel").breakOff();

    assertThat(open(CALL).untilEnd()).last().asString().endsWith("after-first");
    assertThat(b.chatRequestCount()).isZero();
  }

  @Test
  void severalChoicesAreNotContinued() throws Exception {
    pool(a.url(), b.url());
    LiveStream first = new LiveStream();
    first.raw(opening("chatcmpl-a")).raw(token("chatcmpl-a", "Hel", 1, 2)).breakOff();
    a.enqueue(first);
    ChatCall two =
        new ChatCall(
            "demo-model",
            CALL.messages(),
            16,
            0.0,
            1.0,
            List.of(),
            7L,
            null,
            null,
            null,
            new ChatCall.ReplyOptions(null, null, null, null, 2));

    assertThat(open(two).untilEnd()).last().asString().endsWith("after-first");
    assertThat(body(a, 0).has("return_token_ids")).isFalse();
    assertThat(b.chatRequestCount()).isZero();
  }
}
