package io.selfhosted.gateway.chat;

import java.time.Duration;
import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.boot.context.properties.bind.DefaultValue;

/**
 * Client stream settings.
 *
 * @param heartbeatInterval a stream idle this long gets a comment line: it keeps proxies from
 *     timing out, and it is how the gateway learns that a client left (a write is the only way), so
 *     a departure is noticed within about twice this even while no token flows
 * @param resumeGrace how long a browser stream waits for a reconnect before generation stops
 * @param retention how long an ended stream's events stay resumable
 */
@ConfigurationProperties("gateway.stream")
public record StreamProperties(
    @DefaultValue("400ms") Duration heartbeatInterval,
    @DefaultValue("30s") Duration resumeGrace,
    @DefaultValue("10m") Duration retention) {}
