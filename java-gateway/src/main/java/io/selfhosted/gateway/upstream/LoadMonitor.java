package io.selfhosted.gateway.upstream;

import io.github.resilience4j.circuitbreaker.CircuitBreaker;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.MeterRegistry;
import io.selfhosted.gateway.system.DaemonThreads;
import java.io.IOException;
import java.util.List;
import java.util.Map;
import java.util.OptionalDouble;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import okhttp3.Call;
import okhttp3.Callback;
import okhttp3.Response;
import org.springframework.beans.factory.DisposableBean;
import org.springframework.lang.Nullable;
import org.springframework.stereotype.Component;

/**
 * Reads each replica's queue depth and throughput from its Prometheus {@code /metrics} and
 * estimates how long a new request would wait there for its first token: the requests queued ahead
 * of it divided by the rate at which generations finish (Little's law). Upstreams without these
 * metrics (other engines) are not scraped, have no estimate and are never shed.
 */
@Component
public class LoadMonitor implements DisposableBean, UpstreamPool.Membership {

  private final UpstreamPool pool;
  private final ModelServiceClient client;
  private final Breakers breakers;
  private final SheddingProperties properties;
  private final MeterRegistry meters;
  private final Map<Replica, Load> loads = new ConcurrentHashMap<>();
  private final Map<Replica, List<Meter>> replicaMeters = new ConcurrentHashMap<>();
  private final ScheduledExecutorService timer;

  LoadMonitor(
      UpstreamPool pool,
      ModelServiceClient client,
      Breakers breakers,
      SheddingProperties properties,
      MeterRegistry meters) {
    this.pool = pool;
    this.client = client;
    this.breakers = breakers;
    this.properties = properties;
    this.meters = meters;
    pool.addListener(this);
    for (Replica replica : pool.replicas()) {
      joined(replica);
    }
    this.timer = Executors.newSingleThreadScheduledExecutor(DaemonThreads.named("upstream-load"));
    // Read even with shedding off: the ops console shows queue depths and estimates.
    long interval = Math.max(100, properties.scrapeInterval().toMillis());
    timer.scheduleWithFixedDelay(this::scrapeAll, 0, interval, TimeUnit.MILLISECONDS);
  }

  @Override
  public void joined(Replica replica) {
    Load load = new Load();
    if (loads.putIfAbsent(replica, load) != null) {
      return;
    }
    if (!replica.endpoint().engine().servesLoadMetrics()) {
      return; // no queue depth to read: no estimate, never shed, nothing to show
    }
    replicaMeters.put(
        replica,
        List.of(
            Gauge.builder(
                    "gateway.upstream.estimated.wait",
                    replica,
                    r -> estimatedWaitSeconds(r).orElse(Double.NaN))
                .description("estimated seconds a new request waits for its first token")
                .baseUnit("seconds")
                .tag("replica", replica.name())
                .register(meters),
            Gauge.builder("gateway.upstream.queue.depth", load, l -> l.queued)
                .description("requests queued in the replica, as its /metrics reports")
                .tag("replica", replica.name())
                .register(meters)));
  }

  @Override
  public void left(Replica replica) {
    loads.remove(replica);
    List<Meter> gone = replicaMeters.remove(replica);
    if (gone != null) {
      gone.forEach(meters::remove);
    }
  }

  /**
   * The shortest estimated wait among the replicas that could take a request now (ready, breaker
   * not open); empty when any of them has no estimate, or none is left.
   */
  public OptionalDouble bestEstimatedWaitSeconds() {
    double best = Double.MAX_VALUE;
    boolean any = false;
    for (Replica replica : pool.replicas()) {
      if (!replica.isHealthy()
          || breakers.replica(replica).getState() == CircuitBreaker.State.OPEN) {
        continue;
      }
      OptionalDouble wait = estimatedWaitSeconds(replica);
      if (wait.isEmpty()) {
        return OptionalDouble.empty();
      }
      any = true;
      best = Math.min(best, wait.getAsDouble());
    }
    return any ? OptionalDouble.of(best) : OptionalDouble.empty();
  }

  /** The replica's queue depth as its last fresh /metrics said; empty without one. */
  public OptionalDouble queueDepth(Replica replica) {
    Load load = loads.get(replica);
    if (load == null || !load.fresh(3 * Math.max(100, properties.scrapeInterval().toMillis()))) {
      return OptionalDouble.empty();
    }
    return OptionalDouble.of(load.queued);
  }

  /** The estimate of one replica; empty without fresh metrics or a measured throughput. */
  public OptionalDouble estimatedWaitSeconds(Replica replica) {
    Load load = loads.get(replica);
    if (load == null || !load.fresh(3 * Math.max(100, properties.scrapeInterval().toMillis()))) {
      return OptionalDouble.empty();
    }
    // Requests this gateway sent since the last scrape are not in it yet.
    double queued = Math.max(load.queued, replica.outstanding() - load.running);
    if (queued <= 0) {
      return OptionalDouble.of(0);
    }
    if (load.throughput <= 0) {
      return OptionalDouble.empty();
    }
    return OptionalDouble.of(queued / load.throughput);
  }

  void scrapeAll() {
    for (Replica replica : pool.replicas()) {
      Load load = loads.get(replica);
      if (load == null || !replica.endpoint().engine().servesLoadMetrics()) {
        continue;
      }
      client
          .metrics(replica)
          .enqueue(
              new Callback() {
                @Override
                public void onResponse(Call call, Response response) {
                  try (response) {
                    if (response.isSuccessful()) {
                      load.update(parse(response.body().string()), properties);
                    }
                  } catch (IOException | RuntimeException ignored) {
                    // No estimate this round; the previous one goes stale.
                  }
                }

                @Override
                public void onFailure(Call call, IOException e) {
                  // An unreachable replica is the breakers' and health checks' business.
                }
              });
    }
  }

  /** The samples shedding needs, summed over their labels. */
  record Sample(double queued, double running, double finished) {}

  /** Reads the Prometheus text format; null when the metrics shedding needs are missing. */
  static @Nullable Sample parse(String text) {
    double queued = Double.NaN;
    double running = 0;
    double finished = Double.NaN;
    for (String line : text.split("\n")) {
      if (line.isEmpty() || line.charAt(0) == '#') {
        continue;
      }
      int space = line.lastIndexOf(' ');
      if (space < 0) {
        continue;
      }
      int brace = line.indexOf('{');
      String name = line.substring(0, brace >= 0 && brace < space ? brace : space).trim();
      double value;
      try {
        value = Double.parseDouble(line.substring(space + 1).trim());
      } catch (NumberFormatException e) {
        continue;
      }
      switch (name) {
        case "model_queue_depth" -> queued = value;
        case "model_running_requests" -> running = value;
        case "model_generations_total" ->
            finished = (Double.isNaN(finished) ? 0 : finished) + value;
        default -> {}
      }
    }
    if (Double.isNaN(queued) || Double.isNaN(finished)) {
      return null;
    }
    return new Sample(queued, running, finished);
  }

  @Override
  public void destroy() {
    timer.shutdownNow();
  }

  /** The latest scrape of one replica and its smoothed throughput (generations per second). */
  private static final class Load {
    private volatile double queued;
    private volatile double running;
    private volatile double throughput;
    private volatile long scrapedAtNanos;
    private double lastFinished = Double.NaN;
    private long lastNanos;

    synchronized void update(@Nullable Sample sample, SheddingProperties properties) {
      long now = System.nanoTime();
      if (sample == null) {
        return;
      }
      if (!Double.isNaN(lastFinished) && sample.finished() >= lastFinished && now > lastNanos) {
        double rate = (sample.finished() - lastFinished) / ((now - lastNanos) / 1e9);
        double weight = Math.min(1, Math.max(0.01, properties.smoothing()));
        // Idle periods say nothing about capacity: only samples with work in them count.
        if (rate > 0 || sample.queued() > 0 || sample.running() > 0) {
          throughput = throughput <= 0 ? rate : weight * rate + (1 - weight) * throughput;
        }
      }
      lastFinished = sample.finished();
      lastNanos = now;
      queued = sample.queued();
      running = sample.running();
      scrapedAtNanos = now;
    }

    boolean fresh(long maxAgeMillis) {
      return scrapedAtNanos != 0
          && System.nanoTime() - scrapedAtNanos < TimeUnit.MILLISECONDS.toNanos(maxAgeMillis);
    }
  }
}
