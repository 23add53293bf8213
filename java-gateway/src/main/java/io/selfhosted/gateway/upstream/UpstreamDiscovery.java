package io.selfhosted.gateway.upstream;

import io.selfhosted.gateway.system.DaemonThreads;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.beans.factory.DisposableBean;
import org.springframework.stereotype.Component;

/**
 * Looks the upstreams' host names up again every {@code resolve-interval}, so that replicas of a
 * scaled compose service or a headless Kubernetes service join and leave without a restart.
 */
@Component
class UpstreamDiscovery implements DisposableBean {

  private static final Logger log = LoggerFactory.getLogger(UpstreamDiscovery.class);

  private final ScheduledExecutorService timer;

  UpstreamDiscovery(UpstreamPool pool, UpstreamProperties properties) {
    this.timer =
        Executors.newSingleThreadScheduledExecutor(DaemonThreads.named("upstream-discovery"));
    if (pool.discovers()) {
      long interval = properties.resolveInterval().toMillis();
      timer.scheduleWithFixedDelay(
          () -> {
            try {
              pool.refresh();
            } catch (RuntimeException e) {
              // A failed round must not end the schedule (an exception would cancel it).
              log.error("upstream discovery failed", e);
            }
          },
          interval,
          interval,
          TimeUnit.MILLISECONDS);
    }
  }

  @Override
  public void destroy() {
    timer.shutdownNow();
  }
}
