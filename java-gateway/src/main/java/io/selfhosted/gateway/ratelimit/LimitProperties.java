package io.selfhosted.gateway.ratelimit;

import java.time.Duration;
import java.util.Map;
import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.boot.context.properties.bind.ConstructorBinding;
import org.springframework.boot.context.properties.bind.DefaultValue;

/**
 * Rate-limit settings (the limits themselves belong to each API key; whether they are shared by
 * replicas is GATEWAY_REDIS_URL's business, see {@code io.selfhosted.gateway.redis}).
 *
 * @param streamSlotRecovery a concurrent-stream slot that was never given back (its gateway died)
 *     returns by itself within this time
 * @param modelInFlight the most generations in flight per client-facing model on this gateway
 *     (models not named: {@code defaultModelInFlight}; 0 means no cap)
 * @param modelQueueWait how long a request waits for an in-flight slot before a 503
 * @param admission the order in which requests waiting for a slot get one: {@code fair} (the
 *     Virtual Token Counter: the waiting key that was served the fewest weighted tokens first) or
 *     {@code fifo} (first come, first served, whatever the key)
 * @param promptTokenWeight what one prompt token adds to its key's virtual counter
 * @param completionTokenWeight what one generated token adds to its key's virtual counter
 */
@ConfigurationProperties("gateway.limits")
public record LimitProperties(
    @DefaultValue("1h") Duration streamSlotRecovery,
    @DefaultValue Map<String, Integer> modelInFlight,
    @DefaultValue("0") int defaultModelInFlight,
    @DefaultValue("2s") Duration modelQueueWait,
    @DefaultValue("fair") Admission admission,
    @DefaultValue("1") double promptTokenWeight,
    @DefaultValue("2") double completionTokenWeight) {

  @ConstructorBinding
  public LimitProperties {}

  /** The settings of earlier versions, with fair admission and the default token weights. */
  public LimitProperties(
      Duration streamSlotRecovery,
      Map<String, Integer> modelInFlight,
      int defaultModelInFlight,
      Duration modelQueueWait) {
    this(
        streamSlotRecovery,
        modelInFlight,
        defaultModelInFlight,
        modelQueueWait,
        Admission.FAIR,
        1,
        2);
  }

  /** The order of admission to a full model. */
  public enum Admission {
    FAIR,
    FIFO
  }
}
