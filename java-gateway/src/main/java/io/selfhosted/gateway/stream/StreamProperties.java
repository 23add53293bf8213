package io.selfhosted.gateway.stream;

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
 * @param leaseDuration how long a gateway vouches for the answers it generates (in the database,
 *     and in Redis when streams are shared): once it has not renewed for this long, another replica
 *     ends them as interrupted
 * @param leaseRenewInterval how often a gateway renews its leases (well under {@code
 *     leaseDuration})
 * @param instanceId GATEWAY_INSTANCE_ID: this gateway's name in leases; blank means a random one
 *     per start
 * @param maxEvents the most events one stream keeps in Redis (a bound, far above any answer)
 */
@ConfigurationProperties("gateway.stream")
public record StreamProperties(
    @DefaultValue("400ms") Duration heartbeatInterval,
    @DefaultValue("30s") Duration resumeGrace,
    @DefaultValue("10m") Duration retention,
    @DefaultValue("10s") Duration leaseDuration,
    @DefaultValue("2s") Duration leaseRenewInterval,
    @DefaultValue("") String instanceId,
    @DefaultValue("100000") int maxEvents) {}
