package io.selfhosted.gateway.ratelimit;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.selfhosted.gateway.pipeline.Exchange;
import io.selfhosted.gateway.pipeline.Outcome;
import io.selfhosted.gateway.pipeline.Stage;
import io.selfhosted.gateway.system.ApiException;
import io.selfhosted.gateway.upstream.Chunk;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import org.springframework.http.HttpStatus;
import org.springframework.stereotype.Component;

/**
 * Admission by model capacity: at most N generations of a model in flight on this gateway; a new
 * one waits a bounded time for a slot, then gets 503 with Retry-After rather than piling work on a
 * model service that cannot keep up. While requests wait, free slots go to them in Virtual Token
 * Counter order across keys ({@code gateway.limits.admission=fair}, see {@link AdmissionQueue}), or
 * first come first served ({@code fifo}).
 *
 * <p>A key's counter grows by its weighted tokens over its weight: the prompt when a request gets
 * its slot (the gateway's estimate, as VTC counts a prompt when it is served), each generated token
 * as it streams (one an output chunk), and the difference to the model service's own count when the
 * generation ends. Counting as it streams is what keeps a key with long answers in flight from
 * looking cheap until they end.
 */
@Component
public class ModelCapacity implements Stage {

  private final LimitProperties properties;
  private final TokenCounters counters;
  private final Map<String, AdmissionQueue> queues = new ConcurrentHashMap<>();
  private final Map<String, String> keyNames = new ConcurrentHashMap<>();
  private final ServedTokens served = new ServedTokens();
  private final MeterRegistry meters;

  ModelCapacity(LimitProperties properties, TokenCounters counters, MeterRegistry meters) {
    this.properties = properties;
    this.counters = counters;
    this.meters = meters;
  }

  private int capacity(String model) {
    return properties.modelInFlight().getOrDefault(model, properties.defaultModelInFlight());
  }

  /** A generation holding a slot, and what its key was charged for it so far. */
  private static final class Admitted {
    final AdmissionQueue queue;
    final String keyId;
    final double weight;
    final int promptEstimate;
    final AtomicInteger generated = new AtomicInteger();

    Admitted(AdmissionQueue queue, String keyId, double weight, int promptEstimate) {
      this.queue = queue;
      this.keyId = keyId;
      this.weight = weight;
      this.promptEstimate = promptEstimate;
    }
  }

  @Override
  public void admit(Exchange exchange) {
    String model = exchange.model();
    int capacity = capacity(model);
    if (capacity <= 0) {
      return;
    }
    AdmissionQueue queue =
        queues.computeIfAbsent(
            model, m -> new AdmissionQueue(m, capacity, properties.admission(), counters));
    String keyId = exchange.caller().keyId();
    keyNames.put(keyId, exchange.caller().name());
    double weight = exchange.caller().limits().fairShareWeight();
    int prompt = exchange.promptTokenEstimate();
    if (!queue.acquire(
        keyId, properties.promptTokenWeight() * prompt / weight, properties.modelQueueWait())) {
      Counter.builder("gateway.model.overloaded")
          .description("requests refused because a model had no free in-flight slot")
          .tag("model", model)
          .register(meters)
          .increment();
      throw new ApiException(
          HttpStatus.SERVICE_UNAVAILABLE,
          "overloaded_error",
          "model_overloaded",
          "model",
          "the model '" + model + "' is at capacity; retry shortly",
          1L);
    }
    served.add(model, keyId, prompt, nowSeconds());
    exchange.attribute(this, new Admitted(queue, keyId, weight, prompt));
  }

  @Override
  public List<Chunk> onChunk(Exchange exchange, Chunk chunk) {
    Admitted admitted = exchange.attribute(this);
    if (admitted != null && chunk.hasOutput()) {
      admitted.generated.incrementAndGet();
      counters.charge(
          exchange.model(), admitted.keyId, properties.completionTokenWeight() / admitted.weight);
      served.add(exchange.model(), admitted.keyId, 1, nowSeconds());
    }
    return List.of(chunk);
  }

  @Override
  public void finish(Exchange exchange, Outcome outcome) {
    Admitted admitted = exchange.attribute(this);
    if (admitted == null) {
      return;
    }
    admitted.queue.release();
    // Settle to the model service's count (a rejected exchange was served nothing).
    int promptDelta = outcome.promptTokens() - admitted.promptEstimate;
    int generatedDelta = outcome.completionTokens() - admitted.generated.get();
    double delta =
        properties.promptTokenWeight() * promptDelta
            + properties.completionTokenWeight() * generatedDelta;
    if (delta != 0) {
      counters.charge(exchange.model(), admitted.keyId, delta / admitted.weight);
    }
    if (promptDelta + generatedDelta != 0) {
      served.add(exchange.model(), admitted.keyId, promptDelta + generatedDelta, nowSeconds());
    }
  }

  private static long nowSeconds() {
    return System.currentTimeMillis() / 1000;
  }

  /**
   * Each capped model's slots and waiting requests for the status view: per key the requests
   * waiting (here and, with shared counters, on every gateway), its share of the tokens this
   * gateway served in the last minute, and its virtual counter.
   */
  public List<ModelAdmission> state() {
    List<ModelAdmission> models = new ArrayList<>();
    long now = nowSeconds();
    for (Map.Entry<String, AdmissionQueue> entry :
        queues.entrySet().stream().sorted(Map.Entry.comparingByKey()).toList()) {
      String model = entry.getKey();
      AdmissionQueue.State state = entry.getValue().state();
      Map<String, Long> tokens = served.lastMinute(model, now);
      Map<String, Long> waitingEverywhere;
      Map<String, Double> counter;
      Set<String> keys = new HashSet<>(tokens.keySet());
      keys.addAll(state.waiting().keySet());
      try {
        waitingEverywhere = counters.waiting(model);
        keys.addAll(waitingEverywhere.keySet());
        counter = counters.counters(model, keys);
      } catch (RuntimeException e) {
        waitingEverywhere = Map.of();
        counter = Map.of();
      }
      long total = tokens.values().stream().mapToLong(Long::longValue).sum();
      List<KeyAdmission> perKey = new ArrayList<>();
      for (String key : keys) {
        long mine = tokens.getOrDefault(key, 0L);
        perKey.add(
            new KeyAdmission(
                key,
                keyNames.getOrDefault(key, key),
                state.waiting().getOrDefault(key, 0),
                waitingEverywhere.getOrDefault(key, (long) state.waiting().getOrDefault(key, 0)),
                mine,
                total == 0 ? 0 : (double) mine / total,
                counter.getOrDefault(key, 0.0)));
      }
      perKey.sort(
          Comparator.comparingLong(KeyAdmission::waitingEverywhere)
              .thenComparingLong(KeyAdmission::servedTokens)
              .reversed());
      models.add(
          new ModelAdmission(
              model,
              properties.admission().name().toLowerCase(),
              counters.kind(),
              state.capacity(),
              state.inFlight(),
              perKey));
    }
    return models;
  }

  /** One capped model's admission state. */
  public record ModelAdmission(
      String model,
      String order,
      String counters,
      int capacity,
      int inFlight,
      List<KeyAdmission> keys) {}

  /**
   * One key's waiting requests and share of one model.
   *
   * @param share its part of the tokens this gateway served for the model in the last minute
   * @param counter its virtual token counter (weighted tokens over its weight)
   */
  public record KeyAdmission(
      String keyId,
      String name,
      int waiting,
      long waitingEverywhere,
      long servedTokens,
      double share,
      double counter) {}
}
