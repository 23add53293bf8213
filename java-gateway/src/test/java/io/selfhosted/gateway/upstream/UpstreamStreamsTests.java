package io.selfhosted.gateway.upstream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.github.resilience4j.circuitbreaker.CircuitBreaker;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.selfhosted.gateway.pipeline.UpstreamFailures;
import io.selfhosted.gateway.support.FakeModelService;
import io.selfhosted.gateway.support.FakeModelService.LiveStream;
import io.selfhosted.gateway.support.Json;
import io.selfhosted.gateway.support.TestProperties;
import io.selfhosted.gateway.system.ApiException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import mockwebserver3.RecordedRequest;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** The okhttp-sse listener adapter, failover, balancing and ejection against fake replicas. */
class UpstreamStreamsTests {

  private static final ChatCall CALL =
      new ChatCall(
          "demo-model",
          List.of(new ChatCall.Message("user", "hi")),
          16,
          0.7,
          0.9,
          List.of(),
          null,
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

  private UpstreamPool pool(String... urls) {
    poolWithoutWaiting(urls);
    await().until(() -> pool.replicas().stream().allMatch(Replica::isHealthy));
    return pool;
  }

  private UpstreamPool poolWithoutWaiting(String... urls) {
    return poolWithoutWaiting(TestProperties.breakers(), urls);
  }

  private UpstreamPool poolWithoutWaiting(BreakerProperties breakerProperties, String... urls) {
    UpstreamProperties properties = TestProperties.upstreams(List.of(urls), Duration.ofHours(1));
    client = new ModelServiceClient(properties);
    SimpleMeterRegistry meters = new SimpleMeterRegistry();
    breakers = new Breakers(breakerProperties, meters);
    pool = new UpstreamPool(properties, UpstreamResolver.SYSTEM, breakers, meters);
    checks = new HealthChecks(pool, client, properties);
    streams = new UpstreamStreams(pool, client, new UpstreamWire(new ObjectMapper()), breakers);
    return pool;
  }

  /**
   * Breakers that open once half of at least two calls were slow: no first token within {@code
   * slow}.
   */
  private static BreakerProperties slowAfter(Duration slow) {
    return new BreakerProperties(4, 2, 50, 50, slow, Duration.ofSeconds(30), 1);
  }

  private UpstreamStreams.Handle open(ChatCall call, String requestId, Recorder recorder) {
    UpstreamStreams.Handle handle = streams.prepare(call, requestId, recorder, false);
    handle.start();
    return handle;
  }

  @AfterEach
  void tearDown() throws Exception {
    if (pool != null) {
      checks.destroy();
      client.destroy();
    }
    for (AutoCloseable c : closeables) {
      c.close();
    }
  }

  /** Records callbacks in order so tests can assert that nothing is left over. */
  static class Recorder implements UpstreamListener {
    final BlockingQueue<String> calls = new LinkedBlockingQueue<>();
    volatile UpstreamError error;

    @Override
    public void onOpen(String replica) {
      calls.add("open");
    }

    @Override
    public void onChunk(Chunk chunk) {
      if (chunk.usageOnly()) {
        calls.add("usage:" + chunk.usage().total());
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
      this.error = error;
      calls.add(
          "error:"
              + error.kind()
              + ":"
              + error.status()
              + (afterFirstChunk ? ":after-first" : ":before-first")
              + ":"
              + error.message());
    }

    String take() throws InterruptedException {
      String call = calls.poll(20, TimeUnit.SECONDS);
      assertThat(call).as("expected another callback").isNotNull();
      return call;
    }

    /** Every callback up to and including the terminal one. */
    List<String> untilEnd() throws InterruptedException {
      List<String> seen = new ArrayList<>();
      while (true) {
        String call = take();
        seen.add(call);
        if (call.equals("complete") || call.startsWith("error:")) {
          return seen;
        }
      }
    }
  }

  @Test
  void relaysEveryChunkInOrderAndCompletesOnDone() throws Exception {
    pool(a.url());
    Recorder recorder = new Recorder();

    open(CALL, "req-1", recorder);

    assertThat(recorder.untilEnd())
        .containsExactly(
            "open",
            "text:Hello",
            "text:,",
            "text: world",
            "text:!",
            "finish:stop",
            "usage:11",
            "complete");
    assertThat(recorder.calls).isEmpty();
  }

  @Test
  void sendsTheInternalTokenAndRequestId() throws Exception {
    pool(a.url());
    Recorder recorder = new Recorder();
    open(CALL, "req-42", recorder);
    recorder.untilEnd();

    RecordedRequest request = a.chatRequests().get(0);
    assertThat(request.getHeaders().get("Authorization")).isEqualTo("Bearer internal-token");
    assertThat(request.getHeaders().get("X-Request-Id")).isEqualTo("req-42");
    assertThat(Json.parse(request.getBody().utf8()).get("model").asText()).isEqualTo("demo-model");
  }

  @Test
  void failsOverToAnotherReplicaOn5xxBeforeTheFirstToken() throws Exception {
    pool(a.url(), b.url());
    a.enqueue(FakeModelService.error(500, "server_error", "boom", "engine crashed"));
    Recorder recorder = new Recorder();

    open(CALL, "r", recorder);

    assertThat(recorder.untilEnd()).startsWith("open", "text:Hello").endsWith("complete");
    assertThat(a.chatRequestCount()).isEqualTo(1);
    assertThat(b.chatRequestCount()).isEqualTo(1);
  }

  @Test
  void failsOverWhenAReplicaIsOverloaded() throws Exception {
    pool(a.url(), b.url());
    a.enqueue(FakeModelService.error(503, "overloaded", "queue_full", "queue is full"));
    Recorder recorder = new Recorder();

    open(CALL, "r", recorder);

    assertThat(recorder.untilEnd()).endsWith("complete");
    assertThat(b.chatRequestCount()).isEqualTo(1);
  }

  @Test
  void failsOverWhenAReplicaRefusesConnections() throws Exception {
    FakeModelService dead = new FakeModelService();
    String deadUrl = dead.url();
    dead.close();
    poolWithoutWaiting(deadUrl, a.url());
    Replica deadReplica = pool.replicas().get(0);
    await().until(() -> !deadReplica.isHealthy());
    // As if the health check had not noticed yet: the first attempt goes to the dead replica.
    deadReplica.markHealthy(true);
    Recorder recorder = new Recorder();

    open(CALL, "r", recorder);

    assertThat(recorder.untilEnd()).contains("text:Hello").endsWith("complete");
    assertThat(a.chatRequestCount()).isEqualTo(1);
  }

  @Test
  void neverRetriesOnceATokenWasRelayed() throws Exception {
    pool(a.url(), b.url());
    LiveStream live = new LiveStream();
    a.enqueue(live);
    live.token("Hel").breakOff();
    Recorder recorder = new Recorder();

    open(CALL, "r", recorder);

    List<String> calls = recorder.untilEnd();
    assertThat(calls).containsExactly("open", "text:Hel", calls.get(2));
    assertThat(calls.get(2)).startsWith("error:CONNECTION:0:after-first");
    assertThat(b.chatRequestCount()).isZero();
  }

  @Test
  void reportsAnErrorEventInsideTheStream() throws Exception {
    pool(a.url());
    a.enqueue(
        FakeModelService.sse(
            "data: "
                + FakeModelService.chunk("Hi", null)
                + "\n\ndata: {\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\","
                + "\"code\":\"oom\"}}\n\n"));
    Recorder recorder = new Recorder();

    open(CALL, "r", recorder);

    assertThat(recorder.untilEnd())
        .containsExactly("open", "text:Hi", "error:IN_STREAM:0:after-first:out of memory");
  }

  @Test
  void passesA4xxThroughWithoutTryingAnotherReplica() throws Exception {
    pool(a.url(), b.url());
    a.enqueue(
        FakeModelService.error(
            400, "invalid_request_error", "context_length_exceeded", "prompt is too long"));
    Recorder recorder = new Recorder();

    open(CALL, "r", recorder);

    assertThat(recorder.untilEnd())
        .containsExactly("error:HTTP:400:before-first:prompt is too long");
    assertThat(b.chatRequestCount()).isZero();
  }

  @Test
  void deliversEachChunkOfASlowUpstreamAsItArrives() throws Exception {
    pool(a.url());
    LiveStream live = new LiveStream();
    a.enqueue(live);
    Recorder recorder = new Recorder();
    open(CALL, "r", recorder);

    assertThat(recorder.take()).isEqualTo("open");
    for (String word : List.of("one", " two", " three")) {
      live.token(word);
      // The next token is only sent after this one arrived: nothing is held back.
      assertThat(recorder.take()).isEqualTo("text:" + word);
    }
    live.finish();
    assertThat(recorder.untilEnd()).containsExactly("finish:stop", "usage:10", "complete");
  }

  @Test
  void aQueuedRequestThatOnlyPingsOutlivesTheReadTimeout() throws Exception {
    pool(a.url());
    LiveStream live = new LiveStream();
    a.enqueue(live);
    Recorder recorder = new Recorder();
    open(CALL, "r", recorder);
    assertThat(recorder.take()).isEqualTo("open");

    // The read timeout is 1 s here; 40 pings at 50 ms apart are twice that without a token.
    await().until(() -> live.pingsSent() >= 40);
    live.token("finally");
    live.finish();

    assertThat(recorder.untilEnd())
        .containsExactly("text:finally", "finish:stop", "usage:10", "complete");
  }

  @Test
  void cancelClosesTheUpstreamConnectionAndEndsCallbacks() throws Exception {
    pool(a.url());
    LiveStream live = new LiveStream();
    a.enqueue(live);
    Recorder recorder = new Recorder();
    UpstreamStreams.Handle handle = open(CALL, "r", recorder);
    live.token("first");
    assertThat(recorder.take()).isEqualTo("open");
    assertThat(recorder.take()).isEqualTo("text:first");

    handle.cancel();

    assertThat(live.awaitClientGone()).isTrue();
    // The replica is released by okhttp's last callback for this call; nothing reached us.
    await().until(() -> pool.replicas().get(0).outstanding() == 0);
    assertThat(recorder.calls).isEmpty();
  }

  @Test
  void sendsNewStreamsToTheReplicaWithFewestOutstandingRequests() throws Exception {
    pool(a.url(), b.url());
    LiveStream busy = new LiveStream();
    a.enqueue(busy);
    Recorder first = new Recorder();
    open(CALL, "r1", first);
    assertThat(busy.awaitStarted()).isTrue();

    Recorder second = new Recorder();
    open(CALL, "r2", second);

    assertThat(second.untilEnd()).endsWith("complete");
    assertThat(b.chatRequestCount()).isEqualTo(1);
    assertThat(a.chatRequestCount()).isEqualTo(1);
    busy.finish();
    assertThat(first.untilEnd()).endsWith("complete");
  }

  @Test
  void aReplicasBreakerOpensOnFailuresAndClosesAfterASuccessfulProbe() throws Exception {
    pool(a.url(), b.url());
    Replica replicaA = pool.replicas().get(0);
    for (int i = 0; i < 2; i++) {
      a.enqueue(FakeModelService.error(500, "server_error", "boom", "crash"));
      Recorder recorder = new Recorder();
      open(CALL, "r", recorder);
      assertThat(recorder.untilEnd()).as("failed over to b").endsWith("complete");
    }
    assertThat(breakers.replica(replicaA).getState()).isEqualTo(CircuitBreaker.State.OPEN);

    for (int i = 0; i < 3; i++) {
      Recorder recorder = new Recorder();
      open(CALL, "r", recorder);
      assertThat(recorder.untilEnd()).endsWith("complete");
    }
    assertThat(a.chatRequestCount()).as("an open breaker lets no call through").isEqualTo(2);

    await().until(() -> breakers.replica(replicaA).getState() == CircuitBreaker.State.HALF_OPEN);
    Recorder probe = new Recorder();
    open(CALL, "r", probe);
    assertThat(probe.untilEnd()).endsWith("complete");
    assertThat(a.chatRequestCount()).as("the half-open breaker sent a probe").isEqualTo(3);
    assertThat(breakers.replica(replicaA).getState()).isEqualTo(CircuitBreaker.State.CLOSED);
  }

  @Test
  void aModelWhoseBreakerIsOpenIsRefusedWithoutACall() throws Exception {
    pool(a.url());
    for (int i = 0; i < 2; i++) {
      a.enqueue(FakeModelService.error(500, "server_error", "boom", "crash"));
      Recorder recorder = new Recorder();
      open(CALL, "r", recorder);
      recorder.untilEnd();
    }
    Recorder refused = new Recorder();
    open(CALL, "r", refused);
    assertThat(refused.untilEnd()).singleElement().asString().startsWith("error:MODEL_UNAVAILABLE");
    assertThat(refused.error.retryAfterSeconds()).isPositive();
    assertThat(a.chatRequestCount()).isEqualTo(2);
  }

  @Test
  void aSlowWholeReplyIsNotASlowFirstToken() throws Exception {
    poolWithoutWaiting(slowAfter(Duration.ofMillis(100)), a.url());
    a.setDefault(
        r ->
            FakeModelService.whole("all at once")
                .newBuilder()
                .headersDelay(300, TimeUnit.MILLISECONDS)
                .build());
    for (int i = 0; i < 3; i++) {
      Recorder recorder = new Recorder();
      UpstreamStreams.Handle handle = streams.prepare(CALL, "r", recorder, true);
      handle.start();
      assertThat(recorder.untilEnd())
          .containsExactly("open", "finish:stop", "usage:11", "complete");
    }
    assertThat(breakers.model("demo-model").getState()).isEqualTo(CircuitBreaker.State.CLOSED);
  }

  @Test
  void aStreamStillWaitingForItsFirstTokenCountsAsSlowOnceItIsLate() throws Exception {
    poolWithoutWaiting(slowAfter(Duration.ofMillis(200)), a.url());
    List<LiveStream> held = a.holdEveryStream();
    List<UpstreamStreams.Handle> handles = new ArrayList<>();
    for (int i = 0; i < 2; i++) {
      handles.add(open(CALL, "r", new Recorder()));
    }
    await()
        .atMost(Duration.ofSeconds(5))
        .until(
            () -> breakers.replica(pool.replicas().get(0)).getState() == CircuitBreaker.State.OPEN);
    assertThat(held).allSatisfy(live -> assertThat(live.isClientGone()).isFalse());
    handles.forEach(UpstreamStreams.Handle::cancel);
  }

  @Test
  void aReplicaDyingMidStreamOpensItsBreakerButNotTheModels() throws Exception {
    pool(a.url(), b.url());
    Replica replicaA = pool.replicas().get(0);
    LiveStream live = new LiveStream();
    a.enqueue(live);
    Recorder broken = new Recorder();
    open(CALL, "r", broken);
    live.token("partial");
    live.breakOff();
    assertThat(broken.untilEnd()).last().asString().contains("after-first");

    Recorder next = new Recorder();
    open(CALL, "r", next);
    assertThat(next.untilEnd()).endsWith("complete");
    assertThat(b.chatRequestCount()).as("the next call went to the other replica").isEqualTo(1);
    assertThat(breakers.model("demo-model").getState()).isEqualTo(CircuitBreaker.State.CLOSED);
    assertThat(breakers.replica(replicaA).getState()).isEqualTo(CircuitBreaker.State.OPEN);
  }

  @Test
  void aSlowFirstTokenOpensTheBreaker() throws Exception {
    poolWithoutWaiting(slowAfter(Duration.ofMillis(100)), a.url());
    for (int i = 0; i < 2; i++) {
      a.enqueue(FakeModelService.slow(300, "slow"));
      Recorder recorder = new Recorder();
      open(CALL, "r", recorder);
      assertThat(recorder.untilEnd()).endsWith("complete");
    }
    assertThat(breakers.model("demo-model").getState()).isEqualTo(CircuitBreaker.State.OPEN);
  }

  @Test
  void activeHealthChecksEjectAReplicaThatIsNotReady() throws Exception {
    pool(a.url(), b.url());
    a.setReady(503);

    checks.checkAll();

    await().until(() -> !pool.replicas().get(0).isHealthy());
    Recorder recorder = new Recorder();
    open(CALL, "r", recorder);
    assertThat(recorder.untilEnd()).endsWith("complete");
    assertThat(a.chatRequestCount()).isZero();
  }

  @Test
  void reportsASilentUpstreamAsATimeoutThatBecomes504() throws Exception {
    pool(a.url());
    a.enqueue(FakeModelService.stream("late").newBuilder().bodyDelay(10, TimeUnit.SECONDS).build());
    Recorder recorder = new Recorder();

    open(CALL, "r", recorder);

    assertThat(recorder.untilEnd()).last().asString().startsWith("error:TIMEOUT");
    assertThat(UpstreamFailures.toApiException(recorder.error).status().value()).isEqualTo(504);
  }

  @Test
  void anOverloadedUpstreamBecomes503WithItsRetryAfter() throws Exception {
    pool(a.url());
    a.enqueue(FakeModelService.error(503, "overloaded", "queue_full", "queue is full"));
    Recorder recorder = new Recorder();

    open(CALL, "r", recorder);

    assertThat(recorder.untilEnd()).last().asString().startsWith("error:HTTP:503");
    ApiException client = UpstreamFailures.toApiException(recorder.error);
    assertThat(client.status().value()).isEqualTo(503);
    assertThat(client.retryAfterSeconds()).isEqualTo(3L);
  }
}
