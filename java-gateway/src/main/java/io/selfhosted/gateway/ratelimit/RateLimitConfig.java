package io.selfhosted.gateway.ratelimit;

import io.lettuce.core.RedisClient;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.beans.factory.ObjectProvider;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

/**
 * Picks where buckets and fair-admission counters live: Redis when GATEWAY_REDIS_URL is set, else
 * this process.
 */
@Configuration
class RateLimitConfig {

  private static final Logger log = LoggerFactory.getLogger(RateLimitConfig.class);

  @Bean
  BucketStore bucketStore(ObjectProvider<RedisClient> redis) {
    RedisClient client = redis.getIfAvailable();
    if (client == null) {
      log.info("rate limits are kept in this process (set GATEWAY_REDIS_URL to share them)");
      return new LocalBucketStore();
    }
    log.info("rate limits are shared through Redis");
    return new RedisBucketStore(client);
  }

  @Bean
  TokenCounters tokenCounters(ObjectProvider<RedisClient> redis) {
    RedisClient client = redis.getIfAvailable();
    return client == null ? new LocalTokenCounters() : new RedisTokenCounters(client);
  }
}
