package io.selfhosted.gateway.status;

import java.time.Duration;
import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.boot.context.properties.bind.DefaultValue;

/**
 * The service state the ops console shows.
 *
 * @param sampleInterval how often a point of the history is taken
 * @param history how far back the history goes
 */
@ConfigurationProperties("gateway.status")
public record StatusProperties(
    @DefaultValue("5s") Duration sampleInterval, @DefaultValue("15m") Duration history) {}
