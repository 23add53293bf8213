package io.selfhosted.gateway.ratelimit;

import java.util.HashMap;
import java.util.Map;

/**
 * The tokens (prompt and generated, unweighted) this gateway served per model and key over the last
 * minute, in one-second buckets: each key's share for the status view.
 */
final class ServedTokens {

  private static final int SECONDS = 60;

  private final Map<String, Map<String, long[]>> models = new HashMap<>();
  private final Map<String, long[]> stamps = new HashMap<>();

  synchronized void add(String model, String keyId, long tokens, long nowSeconds) {
    long[] buckets =
        models
            .computeIfAbsent(model, m -> new HashMap<>())
            .computeIfAbsent(keyId, k -> new long[SECONDS]);
    long[] stamp = stamps.computeIfAbsent(model + "\u0000" + keyId, k -> new long[SECONDS]);
    int slot = (int) (nowSeconds % SECONDS);
    if (stamp[slot] != nowSeconds) {
      stamp[slot] = nowSeconds;
      buckets[slot] = 0;
    }
    buckets[slot] += tokens;
  }

  /** Tokens per key of {@code model} in the last minute (keys with none left out). */
  synchronized Map<String, Long> lastMinute(String model, long nowSeconds) {
    Map<String, Long> totals = new HashMap<>();
    models
        .getOrDefault(model, Map.of())
        .forEach(
            (key, buckets) -> {
              long[] stamp = stamps.get(model + "\u0000" + key);
              long sum = 0;
              for (int i = 0; i < SECONDS; i++) {
                if (nowSeconds - stamp[i] < SECONDS) {
                  sum += buckets[i];
                }
              }
              if (sum > 0) {
                totals.put(key, sum);
              }
            });
    return totals;
  }
}
