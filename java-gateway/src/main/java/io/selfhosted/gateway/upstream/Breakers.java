package io.selfhosted.gateway.upstream;

import io.github.resilience4j.circuitbreaker.CircuitBreaker;
import io.github.resilience4j.circuitbreaker.CircuitBreakerConfig;
import io.github.resilience4j.circuitbreaker.CircuitBreakerRegistry;
import io.github.resilience4j.micrometer.tagged.TaggedCircuitBreakerMetrics;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.selfhosted.gateway.system.DaemonThreads;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.beans.factory.DisposableBean;
import org.springframework.lang.Nullable;
import org.springframework.stereotype.Component;

/**
 * A Resilience4j circuit breaker per replica and per upstream model. Each opens on the rate of
 * failed calls and on the rate of calls whose first token came too late, refuses calls while open,
 * and lets a few probes through once {@code open-for} has passed.
 *
 * <p>A call is one stream: it succeeds at its first token (its duration is the time to first
 * token), fails on a connection, timeout or server error, and is not counted when the client
 * cancelled it or the replica was only busy (503). A replica also counts a stream it breaks after
 * the first token as a failure.
 */
@Component
public class Breakers implements DisposableBean {

  private static final Logger log = LoggerFactory.getLogger(Breakers.class);
  private static final String REPLICA = "replica:";
  private static final String MODEL = "model:";

  private final CircuitBreakerRegistry registry;
  private final ScheduledThreadPoolExecutor timer;
  private final long slowFirstTokenNanos;

  public Breakers(BreakerProperties properties, MeterRegistry meters) {
    this.slowFirstTokenNanos = properties.slowFirstToken().toNanos();
    this.timer = new ScheduledThreadPoolExecutor(1, DaemonThreads.named("first-token-watch"));
    timer.setRemoveOnCancelPolicy(true);
    CircuitBreakerConfig config =
        CircuitBreakerConfig.custom()
            .slidingWindowType(CircuitBreakerConfig.SlidingWindowType.COUNT_BASED)
            .slidingWindowSize(Math.max(1, properties.window()))
            .minimumNumberOfCalls(Math.max(1, properties.minimumCalls()))
            .failureRateThreshold(properties.failureRate())
            .slowCallRateThreshold(properties.slowRate())
            .slowCallDurationThreshold(properties.slowFirstToken())
            .waitDurationInOpenState(properties.openFor())
            .permittedNumberOfCallsInHalfOpenState(Math.max(1, properties.halfOpenCalls()))
            .automaticTransitionFromOpenToHalfOpenEnabled(true)
            .build();
    this.registry = CircuitBreakerRegistry.of(config);
    registry
        .getEventPublisher()
        .onEntryAdded(
            added -> {
              CircuitBreaker breaker = added.getAddedEntry();
              Counter.Builder transitions =
                  Counter.builder("gateway.degradation.decisions")
                      .description("degradation decisions by kind and outcome")
                      .tag("kind", "breaker");
              breaker
                  .getEventPublisher()
                  .onStateTransition(
                      event -> {
                        CircuitBreaker.StateTransition change = event.getStateTransition();
                        log.warn(
                            "degradation: breaker {} {} -> {} ({})",
                            breaker.getName(),
                            change.getFromState(),
                            change.getToState(),
                            describe(breaker));
                        transitions
                            .tag("decision", change.getToState().name().toLowerCase())
                            .register(meters)
                            .increment();
                      });
            });
    TaggedCircuitBreakerMetrics.ofCircuitBreakerRegistry(registry).bindTo(meters);
  }

  private static String describe(CircuitBreaker breaker) {
    CircuitBreaker.Metrics metrics = breaker.getMetrics();
    return String.format(
        "failure rate %.0f%%, slow rate %.0f%% of %d calls",
        Math.max(0, metrics.getFailureRate()),
        Math.max(0, metrics.getSlowCallRate()),
        metrics.getNumberOfBufferedCalls());
  }

  public CircuitBreaker replica(Replica replica) {
    return registry.circuitBreaker(REPLICA + replica.name());
  }

  /** Drops the breaker of a replica that left the pool, with its meters. */
  void forget(Replica replica) {
    registry.remove(REPLICA + replica.name());
  }

  public CircuitBreaker model(String upstreamModel) {
    return registry.circuitBreaker(MODEL + upstreamModel);
  }

  @Override
  public void destroy() {
    timer.shutdownNow();
  }

  /** Every breaker created so far, by name. */
  public List<CircuitBreaker> all() {
    return registry.getAllCircuitBreakers().stream()
        .sorted(Comparator.comparing(CircuitBreaker::getName))
        .toList();
  }

  /**
   * The permission of one call on a replica, which {@code breaker} already granted.
   *
   * @param streamed whether the call streams: then its time to first token counts (and a late one
   *     counts as slow before it arrives); a whole reply's time is the whole generation's
   */
  Permit replicaPermit(CircuitBreaker breaker, boolean streamed) {
    return new Permit(breaker, true, streamed).watch();
  }

  /** The permission of one call of a model, whichever replicas serve it; as above. */
  Permit modelPermit(CircuitBreaker breaker, boolean streamed) {
    return new Permit(breaker, false, streamed).watch();
  }

  /**
   * One call's permission, recorded exactly once: success, failure, or given back.
   *
   * <p>A streamed call is slow as soon as its first token is late, not only once it arrives: a
   * timer records it as slow when {@code slow-first-token} passes without one, so a replica that
   * accepts streams and never answers them opens its breaker too.
   */
  final class Permit {
    private final CircuitBreaker breaker;
    private final boolean countsLateFailures;
    private final boolean timed;
    private final long startNanos = System.nanoTime();
    private boolean settled;
    private @Nullable ScheduledFuture<?> watch;

    private Permit(CircuitBreaker breaker, boolean countsLateFailures, boolean timed) {
      this.breaker = breaker;
      this.countsLateFailures = countsLateFailures;
      this.timed = timed;
    }

    private synchronized Permit watch() {
      if (timed) {
        watch = timer.schedule(this::success, slowFirstTokenNanos, TimeUnit.NANOSECONDS);
      }
      return this;
    }

    /** The first token arrived, the reply completed, or the first token is late (then slow). */
    synchronized void success() {
      if (!settled) {
        settle();
        breaker.onSuccess(timed ? System.nanoTime() - startNanos : 0, TimeUnit.NANOSECONDS);
      }
    }

    synchronized void failure(UpstreamError error) {
      if (settled) {
        // A replica that fails a stream after its first token counts it as a failure of its own;
        // a model does not (failover could not have helped, and the other replicas are fine).
        if (countsLateFailures && counts(error)) {
          breaker.onError(0, TimeUnit.NANOSECONDS, new UpstreamFailure(error));
        }
        return;
      }
      settle();
      if (counts(error)) {
        breaker.onError(
            System.nanoTime() - startNanos, TimeUnit.NANOSECONDS, new UpstreamFailure(error));
      } else {
        breaker.releasePermission();
      }
    }

    /** The caller cancelled: not the upstream's fault. */
    synchronized void release() {
      if (!settled) {
        settle();
        breaker.releasePermission();
      }
    }

    private void settle() {
      settled = true;
      if (watch != null) {
        watch.cancel(false);
      }
    }
  }

  /** Busy (503) or the client's own mistake (4xx) says nothing about the upstream's health. */
  private static boolean counts(UpstreamError error) {
    return switch (error.kind()) {
      case CONNECTION, TIMEOUT, IN_STREAM, NO_REPLICA -> true;
      case HTTP -> error.status() >= 500 && error.status() != 503;
      case MODEL_UNAVAILABLE -> false;
    };
  }

  /** The exception a breaker records for a failed call. */
  static final class UpstreamFailure extends RuntimeException {
    UpstreamFailure(UpstreamError error) {
      super(error.kind() + ": " + error.message(), null, false, false);
    }
  }
}
