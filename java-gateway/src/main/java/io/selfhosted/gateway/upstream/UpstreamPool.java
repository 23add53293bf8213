package io.selfhosted.gateway.upstream;

import io.github.resilience4j.circuitbreaker.CircuitBreaker;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.MeterRegistry;
import java.net.Inet4Address;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.beans.factory.ObjectProvider;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.stereotype.Component;

/**
 * The model-service replicas from GATEWAY_UPSTREAMS: least-outstanding-requests balancing among
 * those that are ready and whose circuit breaker lets the call through.
 *
 * <p>An upstream whose host is a name stands for every address it resolves to; {@link #refresh()}
 * looks the names up again, adds a replica per new address (out of rotation until its readiness
 * probe passes) and drops those whose address is gone. A dropped replica's streams in flight run to
 * their end (they hold the replica itself); its breaker and meters go at once.
 */
@Component
public class UpstreamPool {

  private static final Logger log = LoggerFactory.getLogger(UpstreamPool.class);

  /** Told when replicas join or leave the pool, on the thread that changed it. */
  interface Membership {
    void joined(Replica replica);

    void left(Replica replica);
  }

  private final List<UpstreamEndpoint> endpoints;
  private final UpstreamResolver resolver;
  private final MeterRegistry meters;
  private final Breakers breakers;
  private final List<Membership> listeners = new CopyOnWriteArrayList<>();
  private final Map<Replica, List<Meter>> replicaMeters = new HashMap<>();
  private final Set<UpstreamEndpoint> unresolved = new LinkedHashSet<>();
  private volatile List<Replica> replicas = List.of();

  /** The system resolver unless the context defines an {@link UpstreamResolver} bean. */
  @Autowired
  public UpstreamPool(
      UpstreamProperties properties,
      ObjectProvider<UpstreamResolver> resolver,
      Breakers breakers,
      MeterRegistry meters) {
    this(properties, resolver.getIfAvailable(() -> UpstreamResolver.SYSTEM), breakers, meters);
  }

  public UpstreamPool(
      UpstreamProperties properties,
      UpstreamResolver resolver,
      Breakers breakers,
      MeterRegistry meters) {
    this.endpoints = properties.parsedEndpoints();
    this.resolver = resolver;
    this.meters = meters;
    this.breakers = breakers;
    for (UpstreamEndpoint endpoint : endpoints) {
      log.info(
          "upstream {}: engine {}, readiness {}, model {}{}",
          endpoint.displayUrl(),
          endpoint.engine().wireName(),
          endpoint.readyPath(),
          endpoint.model() == null ? "as each profile's upstream-model" : endpoint.model(),
          endpoint.discovers() ? ", one replica per address the name resolves to" : "");
    }
    update(true);
  }

  public List<Replica> replicas() {
    return replicas;
  }

  public List<UpstreamEndpoint> endpoints() {
    return endpoints;
  }

  /** Whether some upstream is named by a host name whose replicas may change. */
  boolean discovers() {
    return endpoints.stream().anyMatch(UpstreamEndpoint::discovers);
  }

  void addListener(Membership listener) {
    listeners.add(listener);
  }

  /** Looks every host name up again and applies who joined and who left. */
  public void refresh() {
    update(false);
  }

  private synchronized void update(boolean initial) {
    List<Replica> current = replicas;
    List<Replica> next = new ArrayList<>();
    List<Replica> joined = new ArrayList<>();
    for (UpstreamEndpoint endpoint : endpoints) {
      List<Replica> mine = current.stream().filter(r -> r.endpoint() == endpoint).toList();
      if (!endpoint.discovers()) {
        if (mine.isEmpty()) {
          Replica replica = new Replica(endpoint, null, true);
          joined.add(replica);
          next.add(replica);
        } else {
          next.addAll(mine);
        }
        continue;
      }
      List<InetAddress> addresses;
      try {
        addresses = oneFamily(resolver.resolve(endpoint.url().host()));
        if (unresolved.remove(endpoint)) {
          log.info("upstream {} resolves again", endpoint.displayUrl());
        }
      } catch (UnknownHostException | RuntimeException e) {
        // A failed lookup is more often a DNS hiccup than every replica gone: keep what we had,
        // and let the health checks take replicas that really went out of rotation.
        if (unresolved.add(endpoint)) {
          log.warn(
              "upstream {} does not resolve ({}); keeping its {} known replicas",
              endpoint.displayUrl(),
              e.getMessage(),
              mine.size());
        }
        next.addAll(mine);
        continue;
      }
      for (InetAddress address : addresses) {
        Optional<Replica> known =
            mine.stream().filter(r -> address.equals(r.address())).findFirst();
        if (known.isPresent()) {
          next.add(known.get());
        } else {
          Replica replica = new Replica(endpoint, address, initial);
          joined.add(replica);
          next.add(replica);
        }
      }
    }
    List<Replica> left = current.stream().filter(r -> !next.contains(r)).toList();
    if (joined.isEmpty() && left.isEmpty()) {
      return;
    }
    for (Replica replica : joined) {
      register(replica);
    }
    replicas = List.copyOf(next);
    for (Replica replica : left) {
      log.info(
          "upstream replica {} left ({} streams still running)", replica, replica.outstanding());
      unregister(replica);
      listeners.forEach(l -> l.left(replica));
    }
    for (Replica replica : joined) {
      if (!initial) {
        log.info("upstream replica {} joined; in rotation once it reports ready", replica);
      }
      listeners.forEach(l -> l.joined(replica));
    }
  }

  /**
   * The addresses of one family: IPv4 when the name has any. A dual-stack host is one server
   * reachable twice, not two replicas; a headless service or a scaled compose service has several
   * addresses of one family.
   */
  private static List<InetAddress> oneFamily(List<InetAddress> addresses) {
    List<InetAddress> v4 = addresses.stream().filter(a -> a instanceof Inet4Address).toList();
    List<InetAddress> chosen = v4.isEmpty() ? addresses : v4;
    return chosen.stream().distinct().toList();
  }

  private void register(Replica replica) {
    breakers.replica(replica); // created up front, so metrics and the console see it at once
    List<Meter> registered = new ArrayList<>();
    registered.add(
        Gauge.builder("gateway.upstream.up", replica, r -> r.isHealthy() ? 1 : 0)
            .description("1 while the replica reports ready, 0 while it does not")
            .tag("replica", replica.name())
            .register(meters));
    registered.add(
        Gauge.builder("gateway.upstream.outstanding", replica, Replica::outstanding)
            .description("requests in flight per replica")
            .tag("replica", replica.name())
            .register(meters));
    replicaMeters.put(replica, registered);
  }

  private void unregister(Replica replica) {
    breakers.forget(replica);
    for (Meter meter : replicaMeters.getOrDefault(replica, List.of())) {
      meters.remove(meter);
    }
    replicaMeters.remove(replica);
    meters
        .find("gateway.upstream.errors")
        .tag("replica", replica.name())
        .meters()
        .forEach(meters::remove);
  }

  /** A replica chosen for one attempt, whose breaker granted the call. */
  record Choice(Replica replica, CircuitBreaker breaker) {}

  /**
   * The least loaded ready replica not yet tried whose breaker permits the call; a replica that
   * reports not ready is tried only when no ready one is left (health checks may lag), and a
   * replica whose breaker is open never.
   */
  Optional<Choice> choose(Set<Replica> excluded) {
    Comparator<Replica> order =
        Comparator.comparing((Replica r) -> !r.isHealthy()).thenComparingInt(Replica::outstanding);
    List<Replica> candidates =
        replicas.stream().filter(r -> !excluded.contains(r)).sorted(order).toList();
    for (Replica replica : candidates) {
      CircuitBreaker breaker = breakers.replica(replica);
      if (breaker.tryAcquirePermission()) {
        return Optional.of(new Choice(replica, breaker));
      }
    }
    return Optional.empty();
  }

  /** Whether any replica not yet tried could take a call now (its breaker is not open). */
  boolean anyLeft(Set<Replica> excluded) {
    return replicas.stream()
        .anyMatch(
            r ->
                !excluded.contains(r)
                    && breakers.replica(r).getState() != CircuitBreaker.State.OPEN);
  }

  void recordFailure(Replica replica, UpstreamError error) {
    if (!replicas.contains(replica)) {
      return; // it left the pool: no meter to bring back
    }
    Counter.builder("gateway.upstream.errors")
        .description("failed upstream calls by replica and kind")
        .tag("replica", replica.name())
        .tag("kind", error.kind().name().toLowerCase())
        .register(meters)
        .increment();
  }

  void setHealth(Replica replica, boolean healthy) {
    if (replica.isHealthy() != healthy) {
      log.info("upstream {} is now {}", replica, healthy ? "ready" : "not ready");
    }
    replica.markHealthy(healthy);
  }
}
