package io.selfhosted.gateway.ratelimit;

import io.github.bucket4j.Bandwidth;
import io.github.bucket4j.Bucket;
import io.github.bucket4j.BucketConfiguration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/** Buckets in this process's memory: the embedded default. */
final class LocalBucketStore implements BucketStore {

  private final Map<String, Bucket> buckets = new ConcurrentHashMap<>();

  @Override
  public Bucket bucket(String key, BucketConfiguration configuration) {
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
  public String kind() {
    return "memory";
  }
}
