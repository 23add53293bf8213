package io.selfhosted.gateway.upstream;

import java.time.Duration;
import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.boot.context.properties.bind.DefaultValue;

/**
 * The circuit breakers kept per replica and per model (Resilience4j, count-based window).
 *
 * @param window how many recent calls the failure and slow rates are computed over
 * @param minimumCalls calls needed in the window before the breaker may open
 * @param failureRate percentage of failed calls that opens the breaker
 * @param slowRate percentage of slow calls that opens the breaker
 * @param slowFirstToken a call whose first token took longer than this is slow
 * @param openFor how long an open breaker refuses calls before letting probes through
 * @param halfOpenCalls how many probe calls decide whether it closes again
 */
@ConfigurationProperties("gateway.breaker")
public record BreakerProperties(
    @DefaultValue("20") int window,
    @DefaultValue("5") int minimumCalls,
    @DefaultValue("50") float failureRate,
    @DefaultValue("80") float slowRate,
    @DefaultValue("10s") Duration slowFirstToken,
    @DefaultValue("10s") Duration openFor,
    @DefaultValue("2") int halfOpenCalls) {}
