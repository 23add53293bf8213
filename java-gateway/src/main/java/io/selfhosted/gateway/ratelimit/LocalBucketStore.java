package io.selfhosted.gateway.ratelimit;

import io.github.bucket4j.Bandwidth;
import io.github.bucket4j.Bucket;
import io.github.bucket4j.BucketConfiguration;
import io.github.bucket4j.ConsumptionProbe;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;

/** Buckets in this process's memory (the embedded default): every operation completes at once. */
final class LocalBucketStore implements BucketStore {

  private final Map<String, Bucket> buckets = new ConcurrentHashMap<>();

  private Bucket bucket(String key, BucketConfiguration configuration) {
    return buckets.computeIfAbsent(
        key,
        k -> {
          var builder = Bucket.builder();
          for (Bandwidth bandwidth : configuration.getBandwidths()) {
            builder.addLimit(bandwidth);
          }
          return builder.build();
        });
  }

  @Override
  public CompletableFuture<ConsumptionProbe> tryConsume(
      String key, BucketConfiguration configuration, long tokens) {
    return CompletableFuture.completedFuture(
        bucket(key, configuration).tryConsumeAndReturnRemaining(tokens));
  }

  @Override
  public CompletableFuture<?> addTokens(
      String key, BucketConfiguration configuration, long tokens) {
    bucket(key, configuration).addTokens(tokens);
    return CompletableFuture.completedFuture(null);
  }

  @Override
  public CompletableFuture<?> consumeIgnoringLimits(
      String key, BucketConfiguration configuration, long tokens) {
    bucket(key, configuration).consumeIgnoringRateLimits(tokens);
    return CompletableFuture.completedFuture(null);
  }

  @Override
  public String kind() {
    return "memory";
  }
}
