package io.selfhosted.gateway.redis;

import io.lettuce.core.AbstractRedisClient;
import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisURI;
import java.time.Duration;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.data.redis.connection.lettuce.LettuceClientConfiguration;
import org.springframework.data.redis.connection.lettuce.LettuceConnectionFactory;

/**
 * The one Redis client of the process, declared only when GATEWAY_REDIS_URL is set. Spring Data's
 * connection factory owns it, because Spring Session needs the factory; the gateway's own users of
 * Redis (rate limits, streams, switch notices) take its native Lettuce client and open their own
 * connections on it, so that every connection shares one set of event loops and one shutdown.
 * Boot's own Redis auto-configuration is excluded (see GatewayApplication): it would reach for
 * localhost:6379 whenever the URL is unset.
 */
@Configuration(proxyBeanMethods = false)
public class RedisConfig {

  /**
   * A command slower than this fails (a URL's own {@code timeout} wins): a request would rather be
   * refused quickly than hang on a Redis that stopped answering.
   */
  static final Duration COMMAND_TIMEOUT = Duration.ofSeconds(2);

  private static final Logger log = LoggerFactory.getLogger(RedisConfig.class);

  RedisConfig(RedisProperties properties) {
    if (properties.configured()) {
      log.info(
          "shared state (limits, streams, switch notices, browser sessions) lives in Redis at {}",
          describe(RedisURI.create(properties.url().trim())));
    } else {
      log.info(
          "GATEWAY_REDIS_URL is not set: limits, streams, switch notices and browser sessions are"
              + " kept in this process");
    }
  }

  @Bean
  @ConditionalOnRedis
  LettuceConnectionFactory redisConnectionFactory(RedisProperties properties) {
    RedisURI uri = RedisURI.create(properties.url().trim());
    LettuceClientConfiguration client =
        LettuceClientConfiguration.builder().commandTimeout(COMMAND_TIMEOUT).apply(uri).build();
    return new LettuceConnectionFactory(
        LettuceConnectionFactory.createRedisConfiguration(uri), client) {
      // The client must outlive the beans that use it, and they close their connections when
      // they are destroyed, after every lifecycle has stopped: so it is shut down when the factory
      // is destroyed (after them, since they depend on it), not when lifecycles stop.
      @Override
      public void stop() {}

      @Override
      public void destroy() {
        super.stop();
        super.destroy();
      }
    };
  }

  /** The factory's Lettuce client: the one every other user of Redis connects through. */
  @Bean(destroyMethod = "") // the factory shuts it down; no user of it may
  @ConditionalOnRedis
  RedisClient redisClient(LettuceConnectionFactory factory) {
    AbstractRedisClient client = factory.getRequiredNativeClient();
    if (!(client instanceof RedisClient redis)) {
      throw new IllegalStateException(
          "GATEWAY_REDIS_URL must name one Redis server or a Sentinel group, not a cluster");
    }
    return redis;
  }

  /** Where the URL points, without its credentials. */
  static String describe(RedisURI uri) {
    if (!uri.getSentinels().isEmpty()) {
      return "Sentinel master " + uri.getSentinelMasterId() + ", database " + uri.getDatabase();
    }
    if (uri.getSocket() != null) {
      return "socket " + uri.getSocket() + ", database " + uri.getDatabase();
    }
    return (uri.isSsl() ? "rediss://" : "redis://")
        + uri.getHost()
        + ":"
        + uri.getPort()
        + "/"
        + uri.getDatabase();
  }
}
