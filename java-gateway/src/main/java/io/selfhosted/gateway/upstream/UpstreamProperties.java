package io.selfhosted.gateway.upstream;

import java.time.Duration;
import java.util.List;
import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.boot.context.properties.bind.DefaultValue;

/** The model-service replicas and how the gateway talks to them. */
@ConfigurationProperties("gateway.upstream")
public record UpstreamProperties(
    @DefaultValue("http://127.0.0.1:8000") List<String> urls,
    @DefaultValue("") String token,
    @DefaultValue("5s") Duration connectTimeout,
    @DefaultValue("30s") Duration readTimeout,
    @DefaultValue("5s") Duration healthInterval,
    @DefaultValue("10000") int maxConcurrentStreams) {}
