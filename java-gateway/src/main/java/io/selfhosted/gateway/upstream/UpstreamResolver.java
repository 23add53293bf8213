package io.selfhosted.gateway.upstream;

import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.List;

/**
 * Looks up the addresses behind an upstream's host name. The system resolver in production; tests
 * replace it to make replicas come and go without DNS.
 */
@FunctionalInterface
public interface UpstreamResolver {

  /** Every address the name stands for now; throws when the name does not resolve. */
  List<InetAddress> resolve(String host) throws UnknownHostException;

  /** The JVM's resolver (which caches answers for {@code networkaddress.cache.ttl}). */
  UpstreamResolver SYSTEM = host -> List.of(InetAddress.getAllByName(host));
}
