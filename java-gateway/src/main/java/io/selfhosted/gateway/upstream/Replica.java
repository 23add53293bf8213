package io.selfhosted.gateway.upstream;

import java.util.concurrent.atomic.AtomicInteger;
import okhttp3.HttpUrl;

/** One model-service instance with its balancing and readiness state. */
public final class Replica {

  private final HttpUrl baseUrl;
  private final AtomicInteger outstanding = new AtomicInteger();
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

  void markHealthy(boolean value) {
    healthy = value;
  }

  @Override
  public String toString() {
    return name();
  }
}
