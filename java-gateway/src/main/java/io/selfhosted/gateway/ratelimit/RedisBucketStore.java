package io.selfhosted.gateway.ratelimit;

import io.github.bucket4j.BucketConfiguration;
import io.github.bucket4j.ConsumptionProbe;
import io.github.bucket4j.distributed.AsyncBucketProxy;
import io.github.bucket4j.distributed.ExpirationAfterWriteStrategy;
import io.github.bucket4j.distributed.proxy.AsyncProxyManager;
import io.github.bucket4j.distributed.proxy.optimization.Optimizations;
import io.github.bucket4j.redis.lettuce.Bucket4jLettuce;
import io.github.bucket4j.redis.lettuce.cas.LettuceBasedProxyManager;
import io.lettuce.core.RedisClient;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.codec.ByteArrayCodec;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Buckets in Redis through Bucket4j's Lettuce integration (compare-and-swap), so that every gateway
 * replica draws from one bucket per key. Commands of one gateway travel in order on one connection,
 * so tokens given back reach Redis before any later request of that gateway asks for them. A bucket
 * expires once it would have refilled completely.
 */
final class RedisBucketStore implements BucketStore, AutoCloseable {

  private final StatefulRedisConnection<byte[], byte[]> connection;
  private final AsyncProxyManager<byte[]> buckets;
  private final Map<String, AsyncBucketProxy> proxies = new ConcurrentHashMap<>();

  RedisBucketStore(RedisClient client) {
    this.connection = client.connect(ByteArrayCodec.INSTANCE);
    LettuceBasedProxyManager<byte[]> manager =
        Bucket4jLettuce.casBasedBuilder(connection)
            .expirationAfterWrite(
                ExpirationAfterWriteStrategy.basedOnTimeForRefillingBucketUpToMax(
                    Duration.ofSeconds(10)))
            .requestTimeout(Duration.ofSeconds(2))
            .build();
    this.buckets = manager.asAsync();
  }

  /**
   * One proxy per bucket, kept: its batching lets concurrent requests of one key share a
   * compare-and-swap instead of racing (and retrying) each other's on every request.
   */
  private AsyncBucketProxy bucket(String key, BucketConfiguration configuration) {
    AsyncBucketProxy proxy = proxies.get(key);
    if (proxy != null) {
      return proxy;
    }
    if (proxies.size() > 100_000) {
      proxies.clear(); // bounded; a proxy holds no state that Redis does not
    }
    return proxies.computeIfAbsent(
        key,
        k ->
            buckets
                .builder()
                .withOptimization(Optimizations.batching())
                .build(
                    ("gateway:bucket:" + k).getBytes(StandardCharsets.UTF_8),
                    () -> CompletableFuture.completedFuture(configuration)));
  }

  @Override
  public CompletableFuture<ConsumptionProbe> tryConsume(
      String key, BucketConfiguration configuration, long tokens) {
    return bucket(key, configuration).tryConsumeAndReturnRemaining(tokens);
  }

  @Override
  public CompletableFuture<?> addTokens(
      String key, BucketConfiguration configuration, long tokens) {
    return bucket(key, configuration).addTokens(tokens);
  }

  @Override
  public CompletableFuture<?> consumeIgnoringLimits(
      String key, BucketConfiguration configuration, long tokens) {
    return bucket(key, configuration).consumeIgnoringRateLimits(tokens);
  }

  @Override
  public String kind() {
    return "redis";
  }

  @Override
  public void close() {
    connection.close(); // the client is shared: its owner shuts it down
  }
}
