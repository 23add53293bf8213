package io.selfhosted.gateway.pipeline;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.springframework.stereotype.Component;

/** Stream gauges and timers exported on /actuator/prometheus. */
@Component
public class StreamMetrics {

  private final AtomicInteger active = new AtomicInteger();
  private final AtomicLong tokensRelayed = new AtomicLong();
  private final AtomicLong ended = new AtomicLong();
  private final AtomicLong failed = new AtomicLong();
  private final Timer addedTtft;
  private final Timer ttft;
  private final Timer admitted;
  private final Timer refused;
  private final MeterRegistry meters;

  StreamMetrics(MeterRegistry meters) {
    this.meters = meters;
    Gauge.builder("gateway.streams.active", active, AtomicInteger::get)
        .description("generations streaming right now")
        .register(meters);
    this.addedTtft =
        Timer.builder("gateway.ttft.added")
            .description("time to first token added by the gateway (before and after upstream)")
            .publishPercentileHistogram()
            .register(meters);
    this.ttft =
        Timer.builder("gateway.ttft")
            .description("time to first token as the client sees it")
            .publishPercentileHistogram()
            .register(meters);
    this.admitted = admissionTimer(meters, "admitted");
    this.refused = admissionTimer(meters, "refused");
  }

  /** How long admission took (every stage's check: keys' limits in Redis included). */
  void admission(long startNanos, boolean wasAdmitted) {
    (wasAdmitted ? admitted : refused).record(System.nanoTime() - startNanos, TimeUnit.NANOSECONDS);
  }

  private static Timer admissionTimer(MeterRegistry meters, String outcome) {
    return Timer.builder("gateway.admission")
        .description("time spent deciding whether a request may go upstream")
        .tag("outcome", outcome)
        .publishPercentileHistogram()
        .register(meters);
  }

  void rejected(String surface) {
    Counter.builder("gateway.requests.rejected")
        .description("generation requests refused at admission (limits, quotas, access)")
        .tag("surface", surface)
        .register(meters)
        .increment();
  }

  void started() {
    active.incrementAndGet();
  }

  void ended(String surface, String outcome) {
    active.decrementAndGet();
    ended.incrementAndGet();
    if ("failed".equals(outcome)) {
      failed.incrementAndGet();
    }
    Counter.builder("gateway.streams.ended")
        .tag("surface", surface)
        .tag("outcome", outcome)
        .register(meters)
        .increment();
  }

  /** One content chunk relayed (about one token). */
  void relayed() {
    tokensRelayed.incrementAndGet();
  }

  /** Totals since start, for the ops console's rates. */
  public record Totals(int active, long tokensRelayed, long ended, long failed) {}

  public Totals totals() {
    return new Totals(active.get(), tokensRelayed.get(), ended.get(), failed.get());
  }

  /** Records TTFT: gateway time before the upstream call plus time from arrival to relay. */
  void firstToken(long requestNanos, long upstreamSentNanos, long chunkNanos, long relayedNanos) {
    long added = (upstreamSentNanos - requestNanos) + (relayedNanos - chunkNanos);
    addedTtft.record(Math.max(0, added), TimeUnit.NANOSECONDS);
    ttft.record(Math.max(0, relayedNanos - requestNanos), TimeUnit.NANOSECONDS);
  }
}
