package io.selfhosted.gateway.stream;

import io.selfhosted.gateway.system.DaemonThreads;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * Product streams in this process (the embedded default, without Redis): live while generating,
 * kept for a retention period after the end so that a late reconnect still gets the tail of the
 * stream. Only this gateway can resume them, and no stream here is ever orphaned.
 */
public final class LocalStreamStore implements StreamStore, AutoCloseable {

  private final Map<String, GenerationStream> streams = new ConcurrentHashMap<>();
  private final ScheduledExecutorService timers;
  private final long graceMillis;
  private final long retentionNanos;

  public LocalStreamStore(StreamProperties properties) {
    this.graceMillis = properties.resumeGrace().toMillis();
    this.retentionNanos = properties.retention().toNanos();
    this.timers = Executors.newSingleThreadScheduledExecutor(DaemonThreads.named("stream-timers"));
    long sweep = Math.max(1000, TimeUnit.NANOSECONDS.toMillis(retentionNanos) / 4);
    timers.scheduleWithFixedDelay(this::evictExpired, sweep, sweep, TimeUnit.MILLISECONDS);
  }

  @Override
  public StreamWriter create(
      String messageId, String conversationId, String ownerKeyId, Consumer<String> cancel) {
    GenerationStream stream =
        new GenerationStream(
            messageId,
            conversationId,
            ownerKeyId,
            action -> timers.schedule(action, graceMillis, TimeUnit.MILLISECONDS));
    stream.onCancel(cancel);
    streams.put(messageId, stream);
    return stream;
  }

  @Override
  public Optional<ResumableStream> find(String messageId) {
    return Optional.ofNullable(streams.get(messageId));
  }

  @Override
  public void cancel(ResumableStream stream, String why) {
    GenerationStream local = streams.get(stream.messageId());
    if (local != null) {
      local.cancel(why);
    }
  }

  @Override
  public Optional<String> liveText(String messageId) {
    return Optional.ofNullable(streams.get(messageId)).map(GenerationStream::text);
  }

  @Override
  public Optional<String> interrupt(String messageId) {
    return Optional.empty();
  }

  @Override
  public void onOrphan(Consumer<String> handler) {}

  /** Nothing to renew: no other replica reads these streams. */
  @Override
  public void renewLeases() {}

  @Override
  public String kind() {
    return "memory";
  }

  void evictExpired() {
    long now = System.nanoTime();
    streams.values().removeIf(s -> s.isEnded() && now - s.endedAtNanos() > retentionNanos);
  }

  @Override
  public void close() {
    timers.shutdownNow();
  }
}
