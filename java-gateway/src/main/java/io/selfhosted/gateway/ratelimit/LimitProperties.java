package io.selfhosted.gateway.ratelimit;

import java.time.Duration;
import java.util.Map;
import org.springframework.boot.context.properties.ConfigurationProperties;
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
 */
@ConfigurationProperties("gateway.limits")
public record LimitProperties(
    @DefaultValue("1h") Duration streamSlotRecovery,
    @DefaultValue Map<String, Integer> modelInFlight,
    @DefaultValue("0") int defaultModelInFlight,
    @DefaultValue("2s") Duration modelQueueWait) {}
