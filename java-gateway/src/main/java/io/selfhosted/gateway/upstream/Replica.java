package io.selfhosted.gateway.upstream;

import java.util.concurrent.atomic.AtomicInteger;
import okhttp3.HttpUrl;

/** One model-service instance with its balancing and health state. */
public final class Replica {

  private final HttpUrl baseUrl;
  private final AtomicInteger outstanding = new AtomicInteger();
  private final AtomicInteger consecutiveFailures = new AtomicInteger();
  private volatile boolean healthy = true;

  Replica(HttpUrl baseUrl) {
    this.baseUrl = baseUrl;
  }

  public HttpUrl baseUrl() {
    return baseUrl;
  }

  public String name() {
    String url = baseUrl.toString();
    return url.endsWith("/") ? url.substring(0, url.length() - 1) : url;
  }

  public boolean isHealthy() {
    return healthy;
  }

  public int outstanding() {
    return outstanding.get();
  }

  HttpUrl resolve(String path) {
    return baseUrl
        .newBuilder()
        .encodedPath(baseUrl.encodedPath().replaceAll("/$", "") + path)
        .build();
  }

  void acquire() {
    outstanding.incrementAndGet();
  }

  void release() {
    outstanding.decrementAndGet();
  }

  /** A passive failure; returns true when it ejected the replica. */
  boolean recordFailure(int ejectAfter) {
    if (consecutiveFailures.incrementAndGet() >= ejectAfter && healthy) {
      healthy = false;
      return true;
    }
    return false;
  }

  void recordSuccess() {
    consecutiveFailures.set(0);
  }

  void markHealthy(boolean value) {
    healthy = value;
    if (value) {
      consecutiveFailures.set(0);
    }
  }

  @Override
  public String toString() {
    return name();
  }
}
