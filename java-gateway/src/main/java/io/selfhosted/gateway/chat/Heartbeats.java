package io.selfhosted.gateway.chat;

import io.selfhosted.gateway.system.GatewayProperties;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.springframework.beans.factory.DisposableBean;
import org.springframework.stereotype.Component;

/** Sends comment lines on client streams that have been idle for a heartbeat interval. */
@Component
class Heartbeats implements DisposableBean {

  private final Set<SseConnection> connections = ConcurrentHashMap.newKeySet();
  private final ScheduledExecutorService timer;
  private final long intervalNanos;

  Heartbeats(GatewayProperties properties) {
    this.intervalNanos = properties.stream().heartbeatInterval().toNanos();
    this.timer =
        Executors.newSingleThreadScheduledExecutor(
            r -> {
              Thread t = new Thread(r, "sse-heartbeats");
              t.setDaemon(true);
              return t;
            });
    long tick = Math.max(50, TimeUnit.NANOSECONDS.toMillis(intervalNanos) / 2);
    timer.scheduleWithFixedDelay(this::beat, tick, tick, TimeUnit.MILLISECONDS);
  }

  void register(SseConnection connection) {
    connections.add(connection);
  }

  void unregister(SseConnection connection) {
    connections.remove(connection);
  }

  int size() {
    return connections.size();
  }

  private void beat() {
    for (SseConnection connection : connections) {
      connection.heartbeatIfIdle(intervalNanos);
    }
  }

  @Override
  public void destroy() {
    timer.shutdownNow();
  }
}
