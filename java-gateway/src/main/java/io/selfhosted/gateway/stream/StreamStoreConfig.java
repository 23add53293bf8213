package io.selfhosted.gateway.stream;

import io.lettuce.core.RedisClient;
import io.selfhosted.gateway.stream.redis.RedisStreamStore;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.beans.factory.ObjectProvider;
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
      ObjectProvider<RedisClient> redis, StreamProperties properties, GatewayInstance instance) {
    RedisClient client = redis.getIfAvailable();
    if (client == null) {
      log.info("resumable streams are kept in this process (set GATEWAY_REDIS_URL to share them)");
      return new LocalStreamStore(properties);
    }
    log.info("resumable streams are shared through Redis; this gateway is {}", instance.id());
    return new RedisStreamStore(client, instance.id(), properties);
  }
}
