package io.selfhosted.gateway.pipeline;

import io.selfhosted.gateway.system.ApiException;
import io.selfhosted.gateway.upstream.ChatCall;
import io.selfhosted.gateway.upstream.Chunk;
import io.selfhosted.gateway.upstream.UpstreamError;
import io.selfhosted.gateway.upstream.UpstreamListener;
import io.selfhosted.gateway.upstream.UpstreamStreams;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.slf4j.MDC;
import org.springframework.lang.Nullable;
import org.springframework.stereotype.Component;

/**
 * The one lifecycle of every generation: admission by each stage in order, the upstream stream,
 * per-chunk hooks, and a finish that every admitted stage sees exactly once (completed, cancelled,
 * failed). Entry points only adapt it to their API through a {@link Delivery}.
 */
@Component
public class StreamPipeline {

  private static final Logger log = LoggerFactory.getLogger(StreamPipeline.class);

  private final List<Stage> stages;
  private final UpstreamStreams upstream;
  private final StreamMetrics metrics;
  private final Fallbacks fallbacks;
  private final DegradationLog degradations;

  public StreamPipeline(
      Stages stages,
      UpstreamStreams upstream,
      StreamMetrics metrics,
      Fallbacks fallbacks,
      DegradationLog degradations) {
    this.stages = stages.inOrder();
    this.upstream = upstream;
    this.metrics = metrics;
    this.fallbacks = fallbacks;
    this.degradations = degradations;
  }

  /** Runs every admission stage; throws the first refusal after undoing the stages before it. */
  public Run admit(Exchange exchange) {
    long start = System.nanoTime();
    List<Stage> admitted = new ArrayList<>(stages.size());
    for (Stage stage : stages) {
      if (exchange.localReply() != null && !stage.seesLocalReplies()) {
        continue; // answered by the gateway: limits and checks do not apply
      }
      try {
        stage.admit(exchange);
      } catch (RuntimeException refused) {
        Outcome rejected =
            new Outcome(
                Outcome.Status.REJECTED,
                null,
                0,
                0,
                false,
                refused instanceof ApiException api ? api : null,
                null,
                null,
                elapsedMillis(exchange));
        finishStages(exchange, admitted, rejected);
        metrics.admission(start, false);
        metrics.rejected(exchange.surface());
        throw refused;
      }
      admitted.add(stage);
    }
    metrics.admission(start, true);
    return new Run(exchange, admitted);
  }

  private static long elapsedMillis(Exchange exchange) {
    return TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - exchange.startNanos());
  }

  private static void finishStages(Exchange exchange, List<Stage> admitted, Outcome outcome) {
    for (int i = admitted.size() - 1; i >= 0; i--) {
      try {
        admitted.get(i).finish(exchange, outcome);
      } catch (RuntimeException e) {
        log.error("stage {} failed to finish", admitted.get(i).getClass().getSimpleName(), e);
      }
    }
  }

  /** An admitted generation: start it once, cancel it any time. */
  public final class Run implements UpstreamListener {
    private final Exchange exchange;
    private final List<Stage> admitted;
    private final AtomicBoolean ended = new AtomicBoolean();
    private final Set<String> triedModels = new HashSet<>();
    private volatile Delivery delivery;
    private volatile UpstreamStreams.Handle handle;
    private volatile boolean opened;
    // The choices whose finish reason reached the client.
    private final Set<Integer> finishedChoices = new HashSet<>();
    private int contentChunks;
    private @Nullable Chunk.Usage usage;
    private @Nullable String finishReason;

    private Run(Exchange exchange, List<Stage> admitted) {
      this.exchange = exchange;
      this.admitted = admitted;
    }

    /** Sends the call upstream (or answers locally); the delivery gets every event from here on. */
    public void start(Delivery target) {
      this.delivery = target;
      if (ended.get()) {
        return;
      }
      metrics.started();
      String local = exchange.localReply();
      if (local != null) {
        answerLocally(local);
      } else {
        attempt(exchange.call());
      }
    }

    /** One upstream call; a fallback makes another from inside its error callback. */
    private void attempt(ChatCall call) {
      triedModels.add(call.upstreamModel());
      exchange.upstreamSent(System.nanoTime());
      UpstreamStreams.Handle prepared =
          upstream.prepare(call, exchange.requestId(), this, exchange.wholeReply());
      this.handle = prepared;
      prepared.start();
      if (ended.get()) {
        prepared.cancel(); // cancelled while the call was being opened
      }
    }

    /** Stops the generation (client gone, user or operator); idempotent. */
    public void cancel(String why) {
      if (ended.get()) {
        return;
      }
      UpstreamStreams.Handle current = handle;
      if (current != null) {
        current.cancel();
      }
      end(Outcome.Status.CANCELLED, "cancelled", null, why);
    }

    /** Ends an admitted exchange that could not be started (its own failure, not upstream's). */
    public void abandon(ApiException error) {
      end(Outcome.Status.FAILED, "error", error);
    }

    @Override
    public void onOpen(String replica) {
      exchange.replica(replica);
      open();
    }

    private void open() {
      if (!opened) {
        opened = true;
        delivery.open(exchange);
      }
    }

    @Override
    public void onFailover(String failedReplica, UpstreamError error) {
      exchange.degrade("replica_failover");
      degradations.record(exchange, "fallback", "replica_failover", failedReplica);
    }

    /**
     * The answer goes on from another replica, spliced into the same stream: the client sees no
     * error, and the answer is marked {@code stream_continued} wherever that can still be said (the
     * product finish event, the usage record, the stored answer; {@code X-Degraded} on a whole
     * reply).
     */
    @Override
    public void onContinued(String failedReplica, UpstreamError error) {
      exchange.degrade("stream_continued");
      degradations.record(
          exchange, "fallback", "stream_continued", failedReplica + ": " + error.message());
    }

    @Override
    public void onChunk(Chunk chunk) {
      long arrived = System.nanoTime();
      if (chunk.usage() != null) {
        usage = chunk.usage();
      }
      if (chunk.finishReason() != null) {
        finishReason = chunk.finishReason();
      }
      if (chunk.hasOutput()) {
        contentChunks++;
      }
      List<Chunk> relayed = List.of(chunk);
      try {
        for (Stage stage : admitted) {
          relayed = through(stage, relayed);
          if (relayed.isEmpty()) {
            return;
          }
        }
      } catch (EndGeneration stop) {
        stopEarly(stop);
        return;
      }
      relayed.forEach(c -> deliver(c, arrived));
    }

    private List<Chunk> through(Stage stage, List<Chunk> chunks) {
      if (chunks.size() == 1) {
        return stage.onChunk(exchange, chunks.get(0));
      }
      List<Chunk> out = new ArrayList<>();
      for (Chunk chunk : chunks) {
        out.addAll(stage.onChunk(exchange, chunk));
      }
      return out;
    }

    private void deliver(Chunk chunk, long arrived) {
      delivery.chunk(exchange, chunk);
      if (chunk.finishReason() != null) {
        finishedChoices.add(chunk.choice()); // as the client saw it
      }
      if (!chunk.hasOutput()) {
        return;
      }
      metrics.relayed();
      if (exchange.firstTokenNanos() == 0) {
        long relayed = System.nanoTime();
        exchange.firstToken(relayed);
        metrics.firstToken(exchange.startNanos(), exchange.upstreamSentNanos(), arrived, relayed);
      }
    }

    /** A stage ended the reply (a content check): stop upstream, end with its finish reason. */
    private void stopEarly(EndGeneration stop) {
      UpstreamStreams.Handle current = handle;
      if (current != null) {
        current.cancel();
      }
      if (ended.get()) {
        return;
      }
      // Every choice still open ends with the stage's reason.
      for (int choice = 0; choice < exchange.call().choices(); choice++) {
        if (!finishedChoices.contains(choice)) {
          delivery.chunk(exchange, Chunk.of(chunkId(), choice, "", stop.finishReason()));
        }
      }
      end(Outcome.Status.COMPLETED, stop.finishReason(), null);
    }

    @Override
    public void onComplete() {
      try {
        for (Stage stage : admitted) {
          for (Chunk last : stage.beforeEnd(exchange)) {
            deliver(last, System.nanoTime());
          }
        }
      } catch (EndGeneration stop) {
        stopEarly(stop);
        return;
      }
      end(Outcome.Status.COMPLETED, finishReason == null ? "stop" : finishReason, null);
    }

    @Override
    public void onError(UpstreamError error, boolean afterFirstChunk) {
      log.info(
          "request {} failed upstream ({}, {})",
          exchange.requestId(),
          error.kind(),
          afterFirstChunk ? "after the first token" : "before the first token");
      if (!afterFirstChunk && error.unavailable() && !ended.get() && fallBack(error)) {
        return;
      }
      end(Outcome.Status.FAILED, "error", UpstreamFailures.toApiException(error));
    }

    /** The next step of the fallback chain, if there is one left. */
    private boolean fallBack(UpstreamError error) {
      Optional<Fallbacks.Fallback> next = fallbacks.next(exchange, triedModels);
      if (next.isPresent()) {
        exchange.degrade("fallback_model");
        degradations.record(
            exchange,
            "fallback",
            "fallback_model",
            error.message() + "; answering with " + next.get().model());
        attempt(next.get().call());
        return true;
      }
      String reply = fallbacks.reply();
      if (reply != null) {
        exchange.degrade("fallback_reply");
        degradations.record(exchange, "fallback", "fallback_reply", error.message());
        answerLocally(reply);
        return true;
      }
      return false;
    }

    /** The gateway's own reply, delivered like a one-chunk stream; nothing was generated. */
    private void answerLocally(String text) {
      usage = new Chunk.Usage(0, 0);
      open();
      Chunk reply = Chunk.of(chunkId(), text, "stop");
      finishReason = "stop";
      deliver(reply, System.nanoTime());
      end(Outcome.Status.COMPLETED, "stop", null);
    }

    private String chunkId() {
      return "chatcmpl-" + exchange.requestId();
    }

    private void end(Outcome.Status status, String reason, @Nullable ApiException error) {
      end(status, reason, error, null);
    }

    private void end(
        Outcome.Status status,
        String reason,
        @Nullable ApiException error,
        @Nullable String cancelledBecause) {
      if (!ended.compareAndSet(false, true)) {
        return;
      }
      // Ends may come from any thread (a timer, another request's cancel): log as this request.
      String outer = MDC.get("requestId");
      MDC.put("requestId", exchange.requestId());
      try {
        if (cancelledBecause != null) {
          log.info("request {} cancelled: {}", exchange.requestId(), cancelledBecause);
        }
        settle(status, reason, error);
      } finally {
        if (outer == null) {
          MDC.remove("requestId");
        } else {
          MDC.put("requestId", outer);
        }
      }
    }

    private void settle(Outcome.Status status, String reason, @Nullable ApiException error) {
      Chunk.Usage reported = usage;
      long first = exchange.firstTokenNanos();
      Outcome outcome =
          new Outcome(
              status,
              reason,
              reported != null ? reported.promptTokens() : exchange.promptTokenEstimate(),
              reported != null ? reported.completionTokens() : contentChunks,
              reported == null || reported.estimated(),
              error,
              exchange.replica(),
              first == 0 ? null : TimeUnit.NANOSECONDS.toMillis(first - exchange.startNanos()),
              elapsedMillis(exchange));
      // Stages settle first, so a client that saw the end finds its limits already given back.
      finishStages(exchange, admitted, outcome);
      Delivery target = delivery;
      if (target != null) {
        metrics.ended(exchange.surface(), status.wireName());
        target.end(exchange, outcome);
      }
    }
  }
}
