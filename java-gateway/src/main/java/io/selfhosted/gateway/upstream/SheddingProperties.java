package io.selfhosted.gateway.upstream;

import java.time.Duration;
import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.boot.context.properties.bind.DefaultValue;

/**
 * Load shedding from the model services' own metrics.
 *
 * @param maxWait a new request whose estimated wait for its first token is longer than this on
 *     every replica is refused with 503 and Retry-After; zero turns shedding off
 * @param scrapeInterval how often each replica's /metrics is read
 * @param smoothing weight of the newest throughput sample in its moving average (0..1]
 */
@ConfigurationProperties("gateway.shedding")
public record SheddingProperties(
    @DefaultValue("20s") Duration maxWait,
    @DefaultValue("1s") Duration scrapeInterval,
    @DefaultValue("0.3") double smoothing) {}
