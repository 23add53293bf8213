package io.selfhosted.gateway.upstream;

import io.github.resilience4j.circuitbreaker.CircuitBreaker;
import io.selfhosted.gateway.system.DaemonThreads;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.net.SocketTimeoutException;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import okhttp3.Call;
import okhttp3.Callback;
import okhttp3.Response;
import okhttp3.ResponseBody;
import okhttp3.sse.EventSource;
import okhttp3.sse.EventSourceListener;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.slf4j.MDC;
import org.springframework.beans.factory.DisposableBean;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.lang.Nullable;
import org.springframework.stereotype.Component;

/**
 * Streams chat completions from the pool with failover: connection errors and 5xx are retried on
 * another replica, but only before the first chunk was delivered. After it, a replica that fails
 * (connection lost, an engine error, no chunk for {@code stall-timeout}) has the answer continued
 * on another one from what it sent so far ({@link PartialAnswer}), spliced into the same stream:
 * the continuation's opening chunk is dropped and its chunks take the stream's id. Every call
 * passes the model's circuit breaker and every attempt its replica's.
 *
 * <p>What OpenAI-compatible engines do differently is evened out here: a stream that ends without
 * {@code data: [DONE]} after a chunk with a finish reason is complete (one that ends without a
 * finish reason is broken), and a reply without a usage chunk gets an estimated one before it
 * completes, so limits and accounting always see usage.
 */
@Component
public class UpstreamStreams implements DisposableBean {

  private static final Logger log = LoggerFactory.getLogger(UpstreamStreams.class);

  private final UpstreamPool pool;
  private final ModelServiceClient client;
  private final UpstreamWire wire;
  private final Breakers breakers;
  private final ContinuationProperties continuation;
  // Watches streams that have started for a replica gone silent (a stalled process keeps its
  // connection open, so no read fails before the read timeout).
  private final ScheduledExecutorService stallWatch =
      Executors.newSingleThreadScheduledExecutor(DaemonThreads.named("upstream-stall-watch"));

  public UpstreamStreams(
      UpstreamPool pool, ModelServiceClient client, UpstreamWire wire, Breakers breakers) {
    this(pool, client, wire, breakers, ContinuationProperties.DEFAULTS);
  }

  @Autowired
  public UpstreamStreams(
      UpstreamPool pool,
      ModelServiceClient client,
      UpstreamWire wire,
      Breakers breakers,
      ContinuationProperties continuation) {
    this.pool = pool;
    this.client = client;
    this.wire = wire;
    this.breakers = breakers;
    this.continuation = continuation;
  }

  @Override
  public void destroy() {
    stallWatch.shutdownNow();
  }

  /**
   * A stream of {@code call}, not started yet: keep the handle, then {@link Handle#start()} it
   * (callbacks may come before start returns).
   *
   * @param whole ask the upstream for one whole reply, delivered as one chunk (streaming off)
   */
  public Handle prepare(ChatCall call, String requestId, UpstreamListener listener, boolean whole) {
    return new Handle(call, requestId, listener, whole);
  }

  /**
   * One logical stream across attempts. Attempts run one after another, each with its own listener
   * adapter, so callbacks never interleave.
   */
  public final class Handle {
    private final ChatCall call;
    private final Map<UpstreamEndpoint, byte[]> bodies = new HashMap<>();
    private final UsageEstimate estimate;
    private final String requestId;
    private final UpstreamListener listener;
    private final boolean whole;
    private final Set<Replica> tried = new HashSet<>();
    private final PartialAnswer partial = new PartialAnswer();
    private final AtomicBoolean finished = new AtomicBoolean();
    private volatile boolean opened;
    private volatile boolean chunkDelivered;
    private volatile boolean usageDelivered;
    private volatile @Nullable String lastChunkId;
    // The id of the stream's first chunk, which a continuation's chunks take over.
    private volatile @Nullable String streamId;
    private volatile @Nullable Runnable cancelCurrent;
    private volatile @Nullable Replica currentReplica;
    private volatile @Nullable Breakers.Permit modelPermit;

    private Handle(ChatCall call, String requestId, UpstreamListener listener, boolean whole) {
      this.call = call;
      this.estimate = new UsageEstimate(call);
      this.requestId = requestId;
      this.listener = listener;
      this.whole = whole;
    }

    /** Sends the call, unless the model's breaker is open (then the listener hears so). */
    public void start() {
      if (finished.get()) {
        return;
      }
      CircuitBreaker breaker = breakers.model(call.upstreamModel());
      if (!breaker.tryAcquirePermission()) {
        long retryAfter =
            breaker.getCircuitBreakerConfig().getWaitIntervalFunctionInOpenState().apply(1) / 1000;
        fail(UpstreamError.modelUnavailable(call.upstreamModel(), retryAfter));
        return;
      }
      Breakers.Permit permit = breakers.modelPermit(breaker, !whole);
      modelPermit = permit;
      if (finished.get()) {
        permit.release(); // cancelled meanwhile
        return;
      }
      next();
    }

    /** Stops the upstream generation; no callback follows. */
    public void cancel() {
      if (finished.compareAndSet(false, true)) {
        Breakers.Permit permit = modelPermit;
        if (permit != null) {
          permit.release();
        }
        Runnable stop = cancelCurrent;
        if (stop != null) {
          stop.run();
        }
      }
    }

    /** The replica of the current attempt, if any. */
    public @Nullable String replica() {
      Replica replica = currentReplica;
      return replica == null ? null : replica.name();
    }

    private synchronized void next() {
      Optional<UpstreamPool.Choice> choice = pool.choose(tried);
      if (choice.isEmpty()) {
        fail(UpstreamError.noReplica());
        return;
      }
      // Serialized once per upstream: model names and accepted fields differ between upstreams.
      // Our model service reports token ids, with which a failure mid-answer is continued exactly.
      boolean ids = continuation.enabled() && !whole && call.choices() == 1;
      byte[] body =
          bodies.computeIfAbsent(
              choice.get().replica().endpoint(), e -> wire.body(call, !whole, e, ids, null));
      send(choice.get(), body, false);
    }

    private void send(UpstreamPool.Choice choice, byte[] body, boolean continues) {
      Replica chosen = choice.replica();
      tried.add(chosen);
      chosen.acquire();
      currentReplica = chosen;
      Attempt attempt =
          new Attempt(chosen, breakers.replicaPermit(choice.breaker(), !whole), continues);
      if (whole) {
        Call pending = client.complete(chosen, body, requestId);
        cancelCurrent = () -> attempt.abandon(pending::cancel);
        pending.enqueue(attempt.whole());
      } else {
        EventSource source = client.openStream(chosen, body, requestId, attempt.streamed());
        cancelCurrent = () -> attempt.abandon(source::cancel);
        attempt.watch(source);
      }
      if (finished.get()) {
        cancelCurrent.run();
      }
    }

    /**
     * Continues the answer on another replica after {@code failed} broke off mid-answer; false when
     * it cannot be: continuation is off, the call has several choices or is a whole reply, no
     * replica is left, or the one left cannot continue what was received (our model service needs
     * every token id, other engines an answer without tool calls).
     */
    private synchronized boolean continueAnswer(Replica failed, UpstreamError error) {
      if (!continuation.enabled() || whole || call.choices() != 1 || finished.get()) {
        return false;
      }
      Optional<UpstreamPool.Choice> choice = pool.choose(tried);
      if (choice.isEmpty()) {
        return false;
      }
      UpstreamEndpoint endpoint = choice.get().replica().endpoint();
      boolean ours = endpoint.engine().takesExtensions();
      if (ours ? !partial.hasTokenIds() : partial.hasToolCalls()) {
        return false;
      }
      if (partial.tokens() >= call.maxTokens()) {
        return false;
      }
      listener.onContinued(failed.name(), error);
      log.info(
          "continuing the answer of request {} on {} after {} tokens from {}",
          requestId,
          choice.get().replica(),
          partial.tokens(),
          failed);
      send(choice.get(), wire.body(call, true, endpoint, true, partial), true);
      return true;
    }

    private void modelSucceeded() {
      Breakers.Permit permit = modelPermit;
      if (permit != null) {
        permit.success();
      }
    }

    private void fail(UpstreamError error) {
      if (finished.compareAndSet(false, true)) {
        Breakers.Permit permit = modelPermit;
        if (permit != null) {
          permit.failure(error);
        }
        listener.onError(error, chunkDelivered);
      }
    }

    /** One try on one replica, streamed or whole, with that replica's breaker permission. */
    private final class Attempt {
      private final Replica replica;
      private final Breakers.Permit permit;
      // This attempt continues an answer another replica began.
      private final boolean continues;
      // How many tokens of the answer came before this attempt (a continuation's usage adds them).
      private final int tokensBefore;
      private final AtomicBoolean released = new AtomicBoolean();
      private volatile boolean done;
      private boolean finishSeen;
      private volatile long lastEventNanos = System.nanoTime();
      private volatile boolean stalled;
      private volatile @Nullable ScheduledFuture<?> watch;

      Attempt(Replica replica, Breakers.Permit permit, boolean continues) {
        this.replica = replica;
        this.permit = permit;
        this.continues = continues;
        this.tokensBefore = partial.tokens();
      }

      /**
       * Cancels the transfer once the answer has started and this replica sent nothing for the
       * stall timeout; the failure that follows ends the attempt as stalled.
       */
      void watch(EventSource source) {
        long limit = continuation.stallTimeout().toNanos();
        long every = Math.max(TimeUnit.MILLISECONDS.toNanos(50), limit / 4);
        watch =
            stallWatch.scheduleWithFixedDelay(
                () -> {
                  if (done || finished.get() || !chunkDelivered) {
                    return;
                  }
                  if (System.nanoTime() - lastEventNanos > limit) {
                    stalled = true;
                    stopWatching();
                    source.cancel();
                  }
                },
                every,
                every,
                TimeUnit.NANOSECONDS);
        if (released.get()) {
          stopWatching(); // ended before the watch was set
        }
      }

      private void stopWatching() {
        ScheduledFuture<?> current = watch;
        if (current != null) {
          current.cancel(false);
        }
      }

      private void opened() {
        if (!finished.get() && !opened) {
          opened = true;
          listener.onOpen(replica.name());
        }
      }

      private void chunk(UpstreamWire.Parsed parsed, Runnable stop) {
        if (finished.get() || done) {
          return;
        }
        if (parsed.error() != null) {
          failed(parsed.error());
          stop.run();
          return;
        }
        for (Chunk chunk : parsed.chunks()) {
          if (finished.get() || done) {
            return;
          }
          chunk = splice(chunk);
          if (chunk == null) {
            continue;
          }
          if (!chunkDelivered) {
            permit.success();
            modelSucceeded();
          }
          chunkDelivered = true;
          estimate.add(chunk);
          if (chunk.finishReason() != null) {
            finishSeen = true;
          }
          if (chunk.usage() != null) {
            usageDelivered = true;
          }
          lastChunkId = chunk.id(null);
          listener.onChunk(chunk);
        }
      }

      /**
       * The chunk as the client's stream carries it, or null when it carries nothing for the
       * client: a continuation's opening chunk, or one that only reported token ids.
       */
      private @Nullable Chunk splice(Chunk chunk) {
        boolean onlyIds = call.choices() == 1 && partial.add(chunk);
        boolean empty =
            !chunk.hasOutput()
                && chunk.finishReason() == null
                && chunk.usage() == null
                && chunk.logprobs().isEmpty();
        if (empty && (continues || onlyIds)) {
          return null;
        }
        String id = streamId;
        if (id == null) {
          streamId = chunk.id(null);
        } else if (continues) {
          chunk.raw().put("id", id);
        }
        if (continues && chunk.usage() != null && !replica.endpoint().engine().takesExtensions()) {
          return wholeAnswerUsage(chunk);
        }
        return chunk;
      }

      /**
       * An engine that continued from text counts the earlier part as prompt: counted as completion
       * instead, as in the uninterrupted answer (by the gateway's count of it: an estimate).
       */
      private Chunk wholeAnswerUsage(Chunk chunk) {
        Chunk.Usage reported = chunk.usage();
        Chunk.Usage usage =
            new Chunk.Usage(
                Math.max(0, reported.promptTokens() - tokensBefore),
                reported.completionTokens() + tokensBefore,
                true);
        if (chunk.raw().get("usage") instanceof com.fasterxml.jackson.databind.node.ObjectNode u) {
          u.put("prompt_tokens", usage.promptTokens())
              .put("completion_tokens", usage.completionTokens())
              .put("total_tokens", usage.total())
              .put("estimated", true);
        }
        return new Chunk(
            chunk.raw(),
            chunk.choice(),
            chunk.text(),
            chunk.toolCalls(),
            chunk.finishReason(),
            usage);
      }

      private void completed() {
        if (done) {
          return;
        }
        done = true;
        release();
        permit.success();
        if (!usageDelivered && !finished.get()) {
          String id = lastChunkId;
          listener.onChunk(
              wire.estimatedUsage(id == null ? "chatcmpl-" + requestId : id, estimate));
        }
        if (finished.compareAndSet(false, true)) {
          modelSucceeded();
          listener.onComplete();
        }
      }

      private void failed(UpstreamError error) {
        if (done) {
          return;
        }
        done = true;
        release();
        if (finished.get()) {
          permit.release(); // cancelled by the caller: not a replica failure
          return;
        }
        permit.failure(error);
        pool.recordFailure(replica, error);
        log.warn(
            "upstream {} failed: {} ({}){}",
            replica,
            error.message(),
            error.kind(),
            chunkDelivered ? " after the first token" : "");
        if (!chunkDelivered && error.retryable() && pool.anyLeft(tried)) {
          listener.onFailover(replica.name(), error);
          next();
        } else if (!(chunkDelivered && continuable(error) && continueAnswer(replica, error))) {
          fail(error);
        }
      }

      /** A failure of the replica, not of the request: lost, silent, or its engine failed. */
      private boolean continuable(UpstreamError error) {
        return switch (error.kind()) {
          case CONNECTION, TIMEOUT -> true;
          case IN_STREAM -> error.unavailable();
          default -> false;
        };
      }

      /** The caller cancelled: stop the transfer and give back the slot and the permission. */
      void abandon(Runnable stop) {
        stop.run();
        release();
        permit.release();
      }

      private void release() {
        stopWatching();
        if (released.compareAndSet(false, true)) {
          replica.release();
        }
      }

      /** Relay threads log with the request id of the stream they serve. */
      private void withRequestId(Runnable action) {
        MDC.put("requestId", requestId);
        try {
          action.run();
        } finally {
          MDC.remove("requestId");
        }
      }

      EventSourceListener streamed() {
        return new EventSourceListener() {
          @Override
          public void onOpen(EventSource eventSource, Response response) {
            withRequestId(Attempt.this::opened);
          }

          @Override
          public void onEvent(EventSource eventSource, String id, String type, String data) {
            if (finished.get() || done) {
              return;
            }
            lastEventNanos = System.nanoTime();
            if ("[DONE]".equals(data.trim())) {
              withRequestId(Attempt.this::completed);
              return;
            }
            UpstreamWire.Parsed parsed = wire.parse(data);
            withRequestId(() -> chunk(parsed, eventSource::cancel));
          }

          @Override
          public void onClosed(EventSource eventSource) {
            withRequestId(
                () -> {
                  // Some engines end the body after the last chunk instead of sending [DONE].
                  if (finishSeen) {
                    completed();
                  } else {
                    failed(UpstreamError.connection("the model service closed the stream early"));
                  }
                });
          }

          @Override
          public void onFailure(
              EventSource eventSource, @Nullable Throwable t, @Nullable Response response) {
            if (done) {
              return;
            }
            UpstreamError error;
            if (stalled) {
              error = UpstreamError.stalled(continuation.stallTimeout());
            } else if (response != null && !response.isSuccessful()) {
              error = wire.httpError(response, bodyOf(response));
            } else if (response != null && t instanceof IllegalStateException) {
              error =
                  new UpstreamError(
                      UpstreamError.Kind.HTTP,
                      502,
                      "the model service did not answer with an event stream",
                      "upstream_error",
                      "upstream_protocol_error",
                      null,
                      null);
            } else {
              error = transportError(t);
            }
            withRequestId(() -> failed(error));
          }
        };
      }

      Callback whole() {
        return new Callback() {
          @Override
          public void onResponse(Call call, Response response) {
            try (response) {
              if (!response.isSuccessful()) {
                UpstreamError error = wire.httpError(response, bodyOf(response));
                withRequestId(() -> failed(error));
                return;
              }
              UpstreamWire.Parsed reply = wire.wholeReply(bodyOf(response));
              withRequestId(
                  () -> {
                    opened();
                    chunk(reply, () -> {});
                    completed();
                  });
            }
          }

          @Override
          public void onFailure(Call call, IOException e) {
            withRequestId(() -> failed(transportError(e)));
          }
        };
      }

      private static UpstreamError transportError(@Nullable Throwable t) {
        if (t instanceof SocketTimeoutException
            || (t instanceof InterruptedIOException && "timeout".equals(t.getMessage()))) {
          return UpstreamError.timeout();
        }
        return UpstreamError.connection("the model service is unreachable or reset the stream");
      }

      private @Nullable String bodyOf(Response response) {
        try {
          ResponseBody body = response.body();
          return body.string();
        } catch (IOException | IllegalStateException e) {
          return null;
        }
      }
    }
  }
}
