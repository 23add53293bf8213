package io.selfhosted.gateway.ratelimit;

import java.util.Collection;
import java.util.Map;

/**
 * The Virtual Token Counters of fair admission ("Fairness in Serving Large Language Models", OSDI
 * 2024), per model and key: the weighted tokens each key was served, and which keys have requests
 * waiting (are backlogged). In this process, or in Redis so that every gateway replica orders its
 * queue by the same counters.
 */
interface TokenCounters {

  /**
   * One more request of {@code keyId} waits for {@code model}. When it is the key's first waiting
   * one, the key's counter is lifted to the least counter among the other backlogged keys (or, with
   * none, to the counter of the last key that stopped waiting): time without requests earns no
   * credit to spend later.
   */
  void join(String model, String keyId);

  /** One waiting request of {@code keyId} left the queue: admitted, or gave up. */
  void leave(String model, String keyId);

  /**
   * Adds {@code amount} (weighted tokens over the key's weight; may be negative) to the counter.
   */
  void charge(String model, String keyId, double amount);

  /** The counters of {@code keyIds} (0 for a key never served). */
  Map<String, Double> counters(String model, Collection<String> keyIds);

  /** The requests waiting per key for {@code model}, on every gateway that shares the counters. */
  Map<String, Long> waiting(String model);

  /** {@code local} or {@code redis}, for the status view. */
  String kind();
}
