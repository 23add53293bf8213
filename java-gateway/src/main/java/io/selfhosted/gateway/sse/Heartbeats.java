package io.selfhosted.gateway.sse;

import io.selfhosted.gateway.stream.StreamProperties;
import io.selfhosted.gateway.system.DaemonThreads;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.springframework.beans.factory.DisposableBean;
import org.springframework.stereotype.Component;

/**
 * Sends comment lines on idle client streams: a heartbeat for proxies every interval, and on
 * streams that cancel their generation when the client leaves, a short probe so that a departure is
 * noticed within about a second even while no token flows (a write is how a server learns it).
 */
@Component
public class Heartbeats implements DisposableBean {

  private final Set<SseConnection> connections = ConcurrentHashMap.newKeySet();
  private final Set<Runnable> probes = ConcurrentHashMap.newKeySet();
  private final ScheduledExecutorService timer;
  private final long intervalNanos;

  Heartbeats(StreamProperties properties) {
    this.intervalNanos = properties.heartbeatInterval().toNanos();
    this.timer = Executors.newSingleThreadScheduledExecutor(DaemonThreads.named("sse-heartbeats"));
    long tick = Math.max(50, TimeUnit.NANOSECONDS.toMillis(intervalNanos) / 2);
    timer.scheduleWithFixedDelay(this::beat, tick, tick, TimeUnit.MILLISECONDS);
  }

  void register(SseConnection connection) {
    connections.add(connection);
  }

  void unregister(SseConnection connection) {
    connections.remove(connection);
  }

  /** Runs {@code probe} every probe interval until {@link #unwatch}. */
  public void watch(Runnable probe) {
    probes.add(probe);
  }

  public void unwatch(Runnable probe) {
    probes.remove(probe);
  }

  private void beat() {
    for (SseConnection connection : connections) {
      connection.heartbeatIfIdle(intervalNanos);
    }
    probes.forEach(Runnable::run);
  }

  @Override
  public void destroy() {
    timer.shutdownNow();
  }
}
