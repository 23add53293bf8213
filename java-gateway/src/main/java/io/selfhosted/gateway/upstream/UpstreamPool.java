package io.selfhosted.gateway.upstream;

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
 * The model-service replicas from GATEWAY_UPSTREAMS: least-outstanding-requests balancing and
 * passive ejection after consecutive failures.
 */
@Component
public class UpstreamPool {

  private static final Logger log = LoggerFactory.getLogger(UpstreamPool.class);

  private final List<Replica> replicas;
  private final MeterRegistry meters;
  private final int ejectAfter;

  public UpstreamPool(UpstreamProperties properties, MeterRegistry meters) {
    this.meters = meters;
    this.ejectAfter = Math.max(1, properties.ejectAfterFailures());
    List<Replica> list = new ArrayList<>();
    for (String url : properties.urls()) {
      HttpUrl parsed = HttpUrl.parse(url.trim());
      if (parsed == null) {
        throw new IllegalArgumentException("GATEWAY_UPSTREAMS holds an invalid URL: " + url);
      }
      Replica replica = new Replica(parsed);
      list.add(replica);
      Gauge.builder("gateway.upstream.up", replica, r -> r.isHealthy() ? 1 : 0)
          .description("1 while the replica takes traffic, 0 while ejected")
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

  /** The least loaded healthy replica not yet tried; an ejected one when no healthy one is left. */
  Optional<Replica> choose(Set<Replica> excluded) {
    Comparator<Replica> byLoad = Comparator.comparingInt(Replica::outstanding);
    Optional<Replica> healthy =
        replicas.stream().filter(r -> r.isHealthy() && !excluded.contains(r)).min(byLoad);
    if (healthy.isPresent()) {
      return healthy;
    }
    // All remaining replicas are ejected: trying one beats refusing while health checks lag.
    return replicas.stream().filter(r -> !excluded.contains(r)).min(byLoad);
  }

  void recordFailure(Replica replica, UpstreamError error) {
    Counter.builder("gateway.upstream.errors")
        .description("failed upstream calls by replica and kind")
        .tag("replica", replica.name())
        .tag("kind", error.kind().name().toLowerCase())
        .register(meters)
        .increment();
    if (error.retryable() && replica.recordFailure(ejectAfter)) {
      log.warn("upstream {} ejected after {} consecutive failures", replica, ejectAfter);
    }
  }

  void setHealth(Replica replica, boolean healthy) {
    if (replica.isHealthy() != healthy) {
      log.info("upstream {} is now {}", replica, healthy ? "in rotation" : "ejected");
    }
    replica.markHealthy(healthy);
  }
}
