package io.selfhosted.gateway.upstream;

import io.github.resilience4j.circuitbreaker.CircuitBreaker;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import okhttp3.HttpUrl;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.stereotype.Component;

/**
 * The model-service replicas from GATEWAY_UPSTREAMS: least-outstanding-requests balancing among
 * those that are ready and whose circuit breaker lets the call through.
 */
@Component
public class UpstreamPool {

  private static final Logger log = LoggerFactory.getLogger(UpstreamPool.class);

  private final List<Replica> replicas;
  private final MeterRegistry meters;
  private final Breakers breakers;

  public UpstreamPool(UpstreamProperties properties, Breakers breakers, MeterRegistry meters) {
    this.meters = meters;
    this.breakers = breakers;
    List<Replica> list = new ArrayList<>();
    for (String url : properties.urls()) {
      HttpUrl parsed = HttpUrl.parse(url.trim());
      if (parsed == null) {
        throw new IllegalArgumentException("GATEWAY_UPSTREAMS holds an invalid URL: " + url);
      }
      Replica replica = new Replica(parsed);
      list.add(replica);
      breakers.replica(replica); // created up front, so metrics and the console see it at once
      Gauge.builder("gateway.upstream.up", replica, r -> r.isHealthy() ? 1 : 0)
          .description("1 while the replica reports ready, 0 while it does not")
          .tag("replica", replica.name())
          .register(meters);
      Gauge.builder("gateway.upstream.outstanding", replica, Replica::outstanding)
          .description("requests in flight per replica")
          .tag("replica", replica.name())
          .register(meters);
    }
    this.replicas = List.copyOf(list);
  }

  public List<Replica> replicas() {
    return replicas;
  }

  /** A replica chosen for one attempt, whose breaker granted the call. */
  record Choice(Replica replica, CircuitBreaker breaker) {}

  /**
   * The least loaded ready replica not yet tried whose breaker permits the call; a replica that
   * reports not ready is tried only when no ready one is left (health checks may lag), and a
   * replica whose breaker is open never.
   */
  Optional<Choice> choose(Set<Replica> excluded) {
    Comparator<Replica> order =
        Comparator.comparing((Replica r) -> !r.isHealthy()).thenComparingInt(Replica::outstanding);
    List<Replica> candidates =
        replicas.stream().filter(r -> !excluded.contains(r)).sorted(order).toList();
    for (Replica replica : candidates) {
      CircuitBreaker breaker = breakers.replica(replica);
      if (breaker.tryAcquirePermission()) {
        return Optional.of(new Choice(replica, breaker));
      }
    }
    return Optional.empty();
  }

  /** Whether any replica not yet tried could take a call now (its breaker is not open). */
  boolean anyLeft(Set<Replica> excluded) {
    return replicas.stream()
        .anyMatch(
            r ->
                !excluded.contains(r)
                    && breakers.replica(r).getState() != CircuitBreaker.State.OPEN);
  }

  void recordFailure(Replica replica, UpstreamError error) {
    Counter.builder("gateway.upstream.errors")
        .description("failed upstream calls by replica and kind")
        .tag("replica", replica.name())
        .tag("kind", error.kind().name().toLowerCase())
        .register(meters)
        .increment();
  }

  void setHealth(Replica replica, boolean healthy) {
    if (replica.isHealthy() != healthy) {
      log.info("upstream {} is now {}", replica, healthy ? "ready" : "not ready");
    }
    replica.markHealthy(healthy);
  }
}
