package io.selfhosted.gateway.status;

import io.github.resilience4j.circuitbreaker.CircuitBreaker;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.selfhosted.gateway.degrade.Switch;
import io.selfhosted.gateway.degrade.Switches;
import io.selfhosted.gateway.pipeline.StreamMetrics;
import io.selfhosted.gateway.ratelimit.ModelCapacity;
import io.selfhosted.gateway.system.DaemonThreads;
import io.selfhosted.gateway.upstream.Breakers;
import io.selfhosted.gateway.upstream.LoadMonitor;
import io.selfhosted.gateway.upstream.Replica;
import io.selfhosted.gateway.upstream.UpstreamPool;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.OptionalDouble;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.springframework.beans.factory.DisposableBean;
import org.springframework.lang.Nullable;
import org.springframework.stereotype.Component;

/**
 * This gateway's live state for operators: streams, token and request rates, error rate, each
 * replica's readiness, queue and breaker, each model's breaker, the switches in effect, and a
 * history of the rates sampled every {@code sample-interval} over the last {@code history}, and how
 * many answers were continued on another replica.
 */
@Component
public class ServiceStatus implements DisposableBean {

  private final StreamMetrics metrics;
  private final UpstreamPool pool;
  private final Breakers breakers;
  private final LoadMonitor load;
  private final Switches switches;
  private final ModelCapacity admission;
  private final MeterRegistry meters;
  private final int capacity;
  private final ArrayDeque<Sample> history = new ArrayDeque<>();
  private final ScheduledExecutorService timer;
  private StreamMetrics.Totals last;
  private long lastNanos;

  ServiceStatus(
      StreamMetrics metrics,
      UpstreamPool pool,
      Breakers breakers,
      LoadMonitor load,
      Switches switches,
      ModelCapacity admission,
      MeterRegistry meters,
      StatusProperties properties) {
    this.metrics = metrics;
    this.pool = pool;
    this.breakers = breakers;
    this.load = load;
    this.switches = switches;
    this.admission = admission;
    this.meters = meters;
    long interval = Math.max(100, properties.sampleInterval().toMillis());
    this.capacity = (int) Math.max(1, properties.history().toMillis() / interval);
    this.last = metrics.totals();
    this.lastNanos = System.nanoTime();
    this.timer = Executors.newSingleThreadScheduledExecutor(DaemonThreads.named("status-sampler"));
    timer.scheduleAtFixedRate(this::sample, interval, interval, TimeUnit.MILLISECONDS);
  }

  /** One point of the history. */
  public record Sample(
      Instant at,
      int activeStreams,
      double tokensPerSecond,
      double requestsPerSecond,
      double errorRate,
      double queueDepth) {}

  /** A replica as the console shows it. */
  public record ReplicaState(
      String name,
      boolean ready,
      int outstanding,
      String breaker,
      @Nullable Double queueDepth,
      @Nullable Double estimatedWaitSeconds) {}

  /** A breaker as the console shows it. */
  public record BreakerState(
      String name, String state, float failureRate, float slowRate, int bufferedCalls) {}

  /** The whole picture. */
  public record Snapshot(
      Instant at,
      Sample current,
      List<ReplicaState> replicas,
      List<BreakerState> breakers,
      List<Switch> activeSwitches,
      List<ModelCapacity.ModelAdmission> admission,
      long streamsContinued,
      List<Sample> history) {}

  synchronized void sample() {
    long now = System.nanoTime();
    StreamMetrics.Totals totals = metrics.totals();
    double seconds = Math.max(1e-3, (now - lastNanos) / 1e9);
    long ended = totals.ended() - last.ended();
    long failed = totals.failed() - last.failed();
    double queued = 0;
    for (Replica replica : pool.replicas()) {
      queued += load.queueDepth(replica).orElse(0);
    }
    history.addLast(
        new Sample(
            Instant.now(),
            totals.active(),
            (totals.tokensRelayed() - last.tokensRelayed()) / seconds,
            ended / seconds,
            ended == 0 ? 0 : (double) failed / ended,
            queued));
    while (history.size() > capacity) {
      history.removeFirst();
    }
    last = totals;
    lastNanos = now;
  }

  public synchronized Snapshot snapshot() {
    List<ReplicaState> replicas = new ArrayList<>();
    for (Replica replica : pool.replicas()) {
      OptionalDouble queue = load.queueDepth(replica);
      OptionalDouble wait = load.estimatedWaitSeconds(replica);
      replicas.add(
          new ReplicaState(
              replica.name(),
              replica.isHealthy(),
              replica.outstanding(),
              wireName(breakers.replica(replica).getState()),
              queue.isPresent() ? queue.getAsDouble() : null,
              wait.isPresent() ? wait.getAsDouble() : null));
    }
    List<BreakerState> states = new ArrayList<>();
    for (CircuitBreaker breaker : breakers.all()) {
      CircuitBreaker.Metrics m = breaker.getMetrics();
      states.add(
          new BreakerState(
              breaker.getName(),
              wireName(breaker.getState()),
              Math.max(0, m.getFailureRate()),
              Math.max(0, m.getSlowCallRate()),
              m.getNumberOfBufferedCalls()));
    }
    Instant now = Instant.now();
    List<Switch> active = switches.all().stream().filter(s -> s.activeAt(now)).toList();
    Sample current = history.isEmpty() ? null : history.peekLast();
    return new Snapshot(
        now,
        current,
        replicas,
        states,
        active,
        admission.state(),
        streamsContinued(),
        List.copyOf(history));
  }

  /**
   * Answers this gateway continued on another replica since it started: the {@code
   * stream_continued} degradation decisions it metered.
   */
  private long streamsContinued() {
    return Math.round(
        meters
            .find("gateway.degradation.decisions")
            .tag("decision", "stream_continued")
            .counters()
            .stream()
            .mapToDouble(Counter::count)
            .sum());
  }

  private static String wireName(CircuitBreaker.State state) {
    return state.name().toLowerCase();
  }

  @Override
  public void destroy() {
    timer.shutdownNow();
  }
}
