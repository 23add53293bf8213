package io.selfhosted.gateway.pipeline;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.lang.Nullable;
import org.springframework.stereotype.Component;

/**
 * Every degradation decision (switch, breaker, fallback, shed, filter) as one log line and one
 * count in {@code gateway_degradation_decisions_total{kind, decision}}.
 */
@Component
public class DegradationLog {

  private static final Logger log = LoggerFactory.getLogger(DegradationLog.class);

  private final MeterRegistry meters;

  public DegradationLog(MeterRegistry meters) {
    this.meters = meters;
  }

  /**
   * @param kind what decided: switch, breaker, fallback, shed, filter
   * @param decision what it decided, a short token such as {@code maintenance}
   * @param detail for the log line only
   */
  public void record(
      @Nullable Exchange exchange, String kind, String decision, @Nullable String detail) {
    Counter.builder("gateway.degradation.decisions")
        .description("degradation decisions by kind and outcome")
        .tag("kind", kind)
        .tag("decision", decision)
        .register(meters)
        .increment();
    if (exchange == null) {
      log.warn("degradation: {} {}{}", kind, decision, detail == null ? "" : " (" + detail + ")");
    } else {
      log.warn(
          "degradation: {} {} for request {} (model {}){}",
          kind,
          decision,
          exchange.requestId(),
          exchange.model(),
          detail == null ? "" : ": " + detail);
    }
  }
}
