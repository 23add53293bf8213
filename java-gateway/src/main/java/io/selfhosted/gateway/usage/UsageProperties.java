package io.selfhosted.gateway.usage;

import java.time.Duration;
import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.boot.context.properties.bind.DefaultValue;

/**
 * Usage recording: records are written off the request path in batches.
 *
 * @param flushInterval the longest a record waits before it is written
 * @param batchSize the most records per write
 * @param quotaCacheTtl how long a key's usage sum for its quota period is reused
 */
@ConfigurationProperties("gateway.usage")
public record UsageProperties(
    @DefaultValue("500ms") Duration flushInterval,
    @DefaultValue("500") int batchSize,
    @DefaultValue("2s") Duration quotaCacheTtl) {}
