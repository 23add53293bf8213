package io.selfhosted.gateway.chat;

import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.springframework.beans.factory.DisposableBean;
import org.springframework.stereotype.Component;

/**
 * Resume buffers of product streams by message id: live while generating, kept for a retention
 * period after the end so that a late reconnect still gets the tail of the stream.
 */
@Component
class StreamRegistry implements DisposableBean {

  private final Map<String, GenerationStream> streams = new ConcurrentHashMap<>();
  private final ScheduledExecutorService timers;
  private final long graceMillis;
  private final long retentionNanos;

  StreamRegistry(StreamProperties properties) {
    this.graceMillis = properties.resumeGrace().toMillis();
    this.retentionNanos = properties.retention().toNanos();
    this.timers =
        Executors.newSingleThreadScheduledExecutor(
            r -> {
              Thread t = new Thread(r, "stream-timers");
              t.setDaemon(true);
              return t;
            });
    long sweep = Math.max(1000, TimeUnit.NANOSECONDS.toMillis(retentionNanos) / 4);
    timers.scheduleWithFixedDelay(this::evictExpired, sweep, sweep, TimeUnit.MILLISECONDS);
  }

  GenerationStream create(String messageId, String conversationId, String ownerKeyId) {
    GenerationStream stream =
        new GenerationStream(
            messageId,
            conversationId,
            ownerKeyId,
            action -> timers.schedule(action, graceMillis, TimeUnit.MILLISECONDS));
    streams.put(messageId, stream);
    return stream;
  }

  Optional<GenerationStream> find(String messageId) {
    return Optional.ofNullable(streams.get(messageId));
  }

  void evictExpired() {
    long now = System.nanoTime();
    streams.values().removeIf(s -> s.isEnded() && now - s.endedAtNanos() > retentionNanos);
  }

  @Override
  public void destroy() {
    timers.shutdownNow();
  }
}
