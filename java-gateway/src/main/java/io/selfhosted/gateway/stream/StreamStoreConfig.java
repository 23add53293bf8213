package io.selfhosted.gateway.stream;

import io.selfhosted.gateway.ratelimit.LimitProperties;
import io.selfhosted.gateway.stream.redis.RedisStreamStore;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

/** Picks where resumable streams live: Redis when GATEWAY_REDIS_URL is set, else this process. */
@Configuration
public class StreamStoreConfig {

  private static final Logger log = LoggerFactory.getLogger(StreamStoreConfig.class);

  @Bean
  GatewayInstance gatewayInstance(StreamProperties properties) {
    return GatewayInstance.of(properties);
  }

  @Bean
  StreamStore streamStore(
      LimitProperties limits, StreamProperties properties, GatewayInstance instance) {
    String url = limits.redisUrl();
    if (url == null || url.isBlank()) {
      log.info("resumable streams are kept in this process (set GATEWAY_REDIS_URL to share them)");
      return new LocalStreamStore(properties);
    }
    log.info("resumable streams are shared through Redis; this gateway is {}", instance.id());
    return new RedisStreamStore(url.trim(), instance.id(), properties);
  }
}
