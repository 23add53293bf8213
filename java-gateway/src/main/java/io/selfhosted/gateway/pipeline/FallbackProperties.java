package io.selfhosted.gateway.pipeline;

import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.boot.context.properties.bind.DefaultValue;

/**
 * The end of the fallback chain.
 *
 * @param reply what a client gets, marked degraded, when neither the model nor its fallback models
 *     can answer; empty: the client gets the error instead
 */
@ConfigurationProperties("gateway.fallback")
public record FallbackProperties(@DefaultValue("") String reply) {}
