package io.selfhosted.gateway.pipeline;

import io.selfhosted.gateway.system.ApiException;
import io.selfhosted.gateway.upstream.Chunk;
import io.selfhosted.gateway.upstream.UpstreamError;
import io.selfhosted.gateway.upstream.UpstreamListener;
import io.selfhosted.gateway.upstream.UpstreamStreams;
import java.util.ArrayList;
import java.util.List;
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

  public StreamPipeline(List<Stage> stages, UpstreamStreams upstream, StreamMetrics metrics) {
    this.stages = List.copyOf(stages);
    this.upstream = upstream;
    this.metrics = metrics;
  }

  /** Runs every admission stage; throws the first refusal after undoing the stages before it. */
  public Run admit(Exchange exchange) {
    long start = System.nanoTime();
    List<Stage> admitted = new ArrayList<>(stages.size());
    for (Stage stage : stages) {
      try {
        stage.admit(exchange);
      } catch (RuntimeException refused) {
        Outcome rejected =
            new Outcome(
                Outcome.Status.REJECTED,
                null,
                0,
                0,
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
    private volatile Delivery delivery;
    private volatile UpstreamStreams.Handle handle;
    private int contentChunks;
    private @Nullable Chunk.Usage usage;
    private @Nullable String finishReason;

    private Run(Exchange exchange, List<Stage> admitted) {
      this.exchange = exchange;
      this.admitted = admitted;
    }

    /** Sends the call upstream; the delivery gets every event from here on. */
    public void start(Delivery target) {
      this.delivery = target;
      if (ended.get()) {
        return;
      }
      metrics.started();
      exchange.upstreamSent(System.nanoTime());
      UpstreamStreams.Handle opened = upstream.open(exchange.call(), exchange.requestId(), this);
      this.handle = opened;
      if (ended.get()) {
        opened.cancel(); // cancelled while the call was being opened
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
      delivery.open(exchange);
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
      boolean content = !chunk.text().isEmpty();
      if (content) {
        contentChunks++;
      }
      for (Stage stage : admitted) {
        stage.onChunk(exchange, chunk);
      }
      delivery.chunk(exchange, chunk);
      if (content && exchange.firstTokenNanos() == 0) {
        long relayed = System.nanoTime();
        exchange.firstToken(relayed);
        metrics.firstToken(exchange.startNanos(), exchange.upstreamSentNanos(), arrived, relayed);
      }
    }

    @Override
    public void onComplete() {
      end(Outcome.Status.COMPLETED, finishReason == null ? "stop" : finishReason, null);
    }

    @Override
    public void onError(UpstreamError error, boolean afterFirstChunk) {
      log.info(
          "request {} failed upstream ({}, {})",
          exchange.requestId(),
          error.kind(),
          afterFirstChunk ? "after the first token" : "before the first token");
      end(Outcome.Status.FAILED, "error", UpstreamFailures.toApiException(error));
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
