package io.selfhosted.gateway.usage;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.selfhosted.gateway.pipeline.Exchange;
import io.selfhosted.gateway.pipeline.Outcome;
import io.selfhosted.gateway.pipeline.Stage;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.beans.factory.DisposableBean;
import org.springframework.dao.DataAccessException;
import org.springframework.stereotype.Component;

/**
 * The finish stage that accounts for every generation (completed, cancelled or failed): one usage
 * record each, queued and written in batches by one thread, so no request waits on the database. A
 * failed write is retried; records still queued at shutdown are written before the gateway exits.
 */
@Component
public class UsageRecorder implements Stage, DisposableBean {

  private static final Logger log = LoggerFactory.getLogger(UsageRecorder.class);

  private final UsageRepository repository;
  private final UsageProperties properties;
  private final LinkedBlockingQueue<UsageRecord> queue = new LinkedBlockingQueue<>();
  private final Map<String, AtomicLong> pendingTokens = new ConcurrentHashMap<>();
  private final List<Consumer<List<UsageRecord>>> onWritten = new CopyOnWriteArrayList<>();
  private final Thread writer;
  private final Counter written;
  private volatile boolean running = true;

  public UsageRecorder(
      UsageRepository repository, UsageProperties properties, MeterRegistry meters) {
    this.repository = repository;
    this.properties = properties;
    this.written =
        Counter.builder("gateway.usage.records.written")
            .description("usage records written to the database")
            .register(meters);
    Gauge.builder("gateway.usage.records.queued", queue, LinkedBlockingQueue::size)
        .description("usage records waiting to be written")
        .register(meters);
    this.writer = new Thread(this::writeLoop, "usage-writer");
    writer.setDaemon(true);
    writer.start();
  }

  /** Maintenance replies are accounted too (no tokens, marked degraded). */
  @Override
  public boolean seesLocalReplies() {
    return true;
  }

  @Override
  public void finish(Exchange exchange, Outcome outcome) {
    if (outcome.status() == Outcome.Status.REJECTED) {
      return; // nothing was generated; the refusal is counted in metrics
    }
    UsageRecord record =
        new UsageRecord(
            exchange.requestId(),
            exchange.caller().keyId(),
            exchange.model(),
            exchange.surface(),
            outcome.promptTokens(),
            outcome.completionTokens(),
            outcome.ttftMillis(),
            outcome.durationMillis(),
            outcome.status().wireName(),
            outcome.finishReason(),
            outcome.replica(),
            exchange.degradedReason(),
            Instant.now());
    pendingTokens
        .computeIfAbsent(record.keyId(), k -> new AtomicLong())
        .addAndGet(record.totalTokens());
    queue.add(record);
  }

  /** Tokens of this key recorded here but not yet written. */
  long pendingTokens(String keyId) {
    AtomicLong pending = pendingTokens.get(keyId);
    return pending == null ? 0 : pending.get();
  }

  /** Runs after each batch is written (quota caches forget the keys in it). */
  void onWritten(Consumer<List<UsageRecord>> listener) {
    onWritten.add(listener);
  }

  /** Writes everything queued so far; for tests and shutdown. */
  public void flush() {
    List<UsageRecord> batch = new ArrayList<>();
    synchronized (this) {
      while (queue.drainTo(batch, properties.batchSize()) > 0) {
        write(batch);
        batch.clear();
      }
    }
  }

  private void writeLoop() {
    List<UsageRecord> batch = new ArrayList<>();
    while (running) {
      try {
        UsageRecord first =
            queue.poll(properties.flushInterval().toMillis(), TimeUnit.MILLISECONDS);
        if (first == null) {
          continue;
        }
        synchronized (this) {
          batch.add(first);
          queue.drainTo(batch, properties.batchSize() - 1);
          write(batch);
          batch.clear();
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return;
      }
    }
  }

  private void write(List<UsageRecord> batch) {
    for (int attempt = 1; ; attempt++) {
      try {
        repository.insertAll(batch);
        break;
      } catch (DataAccessException e) {
        if (attempt >= 5 || !running) {
          // Not silently: the records are logged (no prompts, no keys) so they can be replayed.
          log.error(
              "could not write {} usage records: {}; dropping {}",
              batch.size(),
              e.getMessage(),
              batch);
          break;
        }
        log.warn(
            "writing {} usage records failed (attempt {}): {}",
            batch.size(),
            attempt,
            e.getMessage());
        try {
          Thread.sleep(200L * attempt);
        } catch (InterruptedException interrupted) {
          Thread.currentThread().interrupt();
          break;
        }
      }
    }
    for (UsageRecord record : batch) {
      pendingTokens.get(record.keyId()).addAndGet(-record.totalTokens());
    }
    written.increment(batch.size());
    for (Consumer<List<UsageRecord>> listener : onWritten) {
      listener.accept(batch);
    }
  }

  @Override
  public void destroy() throws InterruptedException {
    running = false;
    writer.interrupt();
    writer.join(2000);
    flush();
  }
}
