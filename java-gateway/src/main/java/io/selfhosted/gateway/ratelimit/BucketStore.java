package io.selfhosted.gateway.ratelimit;

import io.github.bucket4j.Bucket;
import io.github.bucket4j.BucketConfiguration;

/** Where token buckets live: this process, or Redis shared by every gateway replica. */
public interface BucketStore {

  /** The bucket named {@code key}, created with {@code configuration} on first use. */
  Bucket bucket(String key, BucketConfiguration configuration);

  /** Where the buckets live, for logs and metrics. */
  String kind();
}
