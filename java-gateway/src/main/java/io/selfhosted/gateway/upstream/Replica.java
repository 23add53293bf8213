package io.selfhosted.gateway.upstream;

import java.net.InetAddress;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import okhttp3.Dns;
import okhttp3.HttpUrl;
import org.springframework.lang.Nullable;

/**
 * One model-service instance with its balancing and readiness state: an upstream's URL, pinned to
 * one of the addresses its host name resolved to when the upstream is discovered through DNS.
 */
public final class Replica {

  private final UpstreamEndpoint endpoint;
  private final @Nullable InetAddress address;
  private final @Nullable Dns pinned;
  private final String name;
  private final AtomicInteger outstanding = new AtomicInteger();
  private volatile boolean healthy;

  /**
   * @param address the address this replica is pinned to; null: the URL's host as it resolves
   * @param healthy whether it starts in rotation (a replica that joins later waits for its probe)
   */
  Replica(UpstreamEndpoint endpoint, @Nullable InetAddress address, boolean healthy) {
    this.endpoint = endpoint;
    this.address = address;
    // One Dns instance per replica: okhttp pools connections per (host, Dns), so each replica keeps
    // its own connections while Host and TLS still see the configured name.
    this.pinned = address == null ? null : host -> List.of(address);
    this.name =
        address == null
            ? endpoint.displayUrl()
            : endpoint.displayUrl() + " (" + address.getHostAddress() + ")";
    this.healthy = healthy;
  }

  public HttpUrl baseUrl() {
    return endpoint.url();
  }

  public UpstreamEndpoint endpoint() {
    return endpoint;
  }

  /** The address this replica is pinned to, or null when its host resolves on every connection. */
  public @Nullable InetAddress address() {
    return address;
  }

  /** The URL, plus the address for a replica found through DNS: for metrics, logs and breakers. */
  public String name() {
    return name;
  }

  public boolean isHealthy() {
    return healthy;
  }

  public int outstanding() {
    return outstanding.get();
  }

  @Nullable
  Dns pinnedDns() {
    return pinned;
  }

  HttpUrl resolve(String path) {
    HttpUrl baseUrl = endpoint.url();
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
