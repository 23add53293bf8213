package io.selfhosted.gateway.ratelimit;

import io.github.bucket4j.BucketConfiguration;
import io.github.bucket4j.ConsumptionProbe;
import java.util.concurrent.CompletableFuture;

/**
 * Where token buckets live: this process, or Redis shared by every gateway replica. Operations are
 * asynchronous so that several buckets are asked at once (one network round trip, not three) and
 * tokens are given back without holding up the stream that ends.
 */
public interface BucketStore {

  /** Takes {@code tokens} from the bucket named {@code key} if it holds them. */
  CompletableFuture<ConsumptionProbe> tryConsume(
      String key, BucketConfiguration configuration, long tokens);

  /** Puts tokens back (never above the capacity). */
  CompletableFuture<?> addTokens(String key, BucketConfiguration configuration, long tokens);

  /** Takes tokens whether or not the bucket holds them (a debt the refill pays off). */
  CompletableFuture<?> consumeIgnoringLimits(
      String key, BucketConfiguration configuration, long tokens);

  /** Where the buckets live, for logs and metrics. */
  String kind();
}
