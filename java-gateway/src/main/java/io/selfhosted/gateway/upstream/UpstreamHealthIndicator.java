package io.selfhosted.gateway.upstream;

import org.springframework.boot.actuate.health.Health;
import org.springframework.boot.actuate.health.HealthIndicator;
import org.springframework.stereotype.Component;

/** The gateway can serve while at least one model-service replica is in rotation. */
@Component("upstreams")
class UpstreamHealthIndicator implements HealthIndicator {

  private final UpstreamPool pool;

  UpstreamHealthIndicator(UpstreamPool pool) {
    this.pool = pool;
  }

  @Override
  public Health health() {
    Health.Builder builder =
        pool.replicas().stream().anyMatch(Replica::isHealthy) ? Health.up() : Health.down();
    for (Replica replica : pool.replicas()) {
      builder.withDetail(replica.name(), replica.isHealthy() ? "in rotation" : "ejected");
    }
    return builder.build();
  }
}
