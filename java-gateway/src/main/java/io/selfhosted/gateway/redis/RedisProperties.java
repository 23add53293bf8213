package io.selfhosted.gateway.redis;

import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.boot.context.properties.bind.DefaultValue;

/**
 * Where the state that gateway replicas share lives.
 *
 * @param url GATEWAY_REDIS_URL, a Lettuce URI ({@code redis://[[user]:password@]host[:port][/db]},
 *     {@code rediss://} for TLS, {@code redis-sentinel://}): set, every replica shares rate limits,
 *     stream events and leases, switch notices and browser sessions through this Redis; blank, each
 *     gateway keeps them in its own memory
 */
@ConfigurationProperties("gateway.redis")
public record RedisProperties(@DefaultValue("") String url) {

  /** The property that decides whether the gateway uses Redis at all. */
  public static final String URL = "gateway.redis.url";

  /** Whether a Redis URL is set. */
  public boolean configured() {
    return url != null && !url.isBlank();
  }
}
