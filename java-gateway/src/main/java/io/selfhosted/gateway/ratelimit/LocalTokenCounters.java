package io.selfhosted.gateway.ratelimit;

import java.util.Collection;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;

/** Virtual token counters in this process: one gateway, or gateways that do not share them. */
final class LocalTokenCounters implements TokenCounters {

  private final Map<String, Model> models = new HashMap<>();

  private static final class Model {
    final Map<String, Double> counters = new HashMap<>();
    final Map<String, Long> waiting = new LinkedHashMap<>();
    double lastLeft;
  }

  private Model model(String name) {
    return models.computeIfAbsent(name, n -> new Model());
  }

  @Override
  public synchronized void join(String model, String keyId) {
    Model m = model(model);
    long before = m.waiting.getOrDefault(keyId, 0L);
    if (before == 0) {
      double floor =
          m.waiting.keySet().stream()
              .mapToDouble(k -> m.counters.getOrDefault(k, 0.0))
              .min()
              .orElse(m.lastLeft);
      m.counters.merge(keyId, floor, Math::max);
    }
    m.waiting.put(keyId, before + 1);
  }

  @Override
  public synchronized void leave(String model, String keyId) {
    Model m = model(model);
    long left = m.waiting.getOrDefault(keyId, 0L) - 1;
    if (left > 0) {
      m.waiting.put(keyId, left);
      return;
    }
    m.waiting.remove(keyId);
    if (m.waiting.isEmpty()) {
      m.lastLeft = m.counters.getOrDefault(keyId, 0.0);
    }
  }

  @Override
  public synchronized void charge(String model, String keyId, double amount) {
    model(model).counters.merge(keyId, amount, Double::sum);
  }

  @Override
  public synchronized Map<String, Double> counters(String model, Collection<String> keyIds) {
    Model m = model(model);
    Map<String, Double> values = new HashMap<>();
    for (String key : keyIds) {
      values.put(key, m.counters.getOrDefault(key, 0.0));
    }
    return values;
  }

  @Override
  public synchronized Map<String, Long> waiting(String model) {
    return Map.copyOf(model(model).waiting);
  }

  @Override
  public String kind() {
    return "local";
  }
}
