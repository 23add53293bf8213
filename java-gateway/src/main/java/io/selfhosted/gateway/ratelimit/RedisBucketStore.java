package io.selfhosted.gateway.ratelimit;

import io.github.bucket4j.Bucket;
import io.github.bucket4j.BucketConfiguration;
import io.github.bucket4j.distributed.ExpirationAfterWriteStrategy;
import io.github.bucket4j.distributed.proxy.ProxyManager;
import io.github.bucket4j.redis.lettuce.Bucket4jLettuce;
import io.lettuce.core.RedisClient;
import java.nio.charset.StandardCharsets;
import java.time.Duration;

/**
 * Buckets in Redis through Bucket4j's Lettuce integration (compare-and-swap), so that every gateway
 * replica draws from one bucket per key. A bucket expires once it would have refilled completely.
 */
final class RedisBucketStore implements BucketStore, AutoCloseable {

  private final RedisClient client;
  private final ProxyManager<String> buckets;

  RedisBucketStore(String url) {
    this.client = RedisClient.create(url);
    this.buckets =
        Bucket4jLettuce.casBasedBuilder(client)
            .expirationAfterWrite(
                ExpirationAfterWriteStrategy.basedOnTimeForRefillingBucketUpToMax(
                    Duration.ofSeconds(10)))
            .requestTimeout(Duration.ofSeconds(2))
            .build()
            .withMapper(key -> ("gateway:bucket:" + key).getBytes(StandardCharsets.UTF_8));
  }

  @Override
  public Bucket bucket(String key, BucketConfiguration configuration) {
    return buckets.builder().build(key, () -> configuration);
  }

  @Override
  public String kind() {
    return "redis";
  }

  @Override
  public void close() {
    client.shutdown();
  }
}
