package io.selfhosted.gateway.ratelimit;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.selfhosted.gateway.pipeline.Exchange;
import io.selfhosted.gateway.pipeline.Outcome;
import io.selfhosted.gateway.pipeline.Stage;
import io.selfhosted.gateway.system.ApiException;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import org.springframework.http.HttpStatus;
import org.springframework.stereotype.Component;

/**
 * Admission by model capacity: at most N generations of a model in flight on this gateway; a new
 * one waits a bounded time for a slot, then gets 503 with Retry-After rather than piling work on a
 * model service that cannot keep up.
 */
@Component
public class ModelCapacity implements Stage {

  private final LimitProperties properties;
  private final Map<String, Semaphore> slots = new ConcurrentHashMap<>();
  private final MeterRegistry meters;

  ModelCapacity(LimitProperties properties, MeterRegistry meters) {
    this.properties = properties;
    this.meters = meters;
  }

  private int capacity(String model) {
    return properties.modelInFlight().getOrDefault(model, properties.defaultModelInFlight());
  }

  @Override
  public void admit(Exchange exchange) {
    int capacity = capacity(exchange.model());
    if (capacity <= 0) {
      return;
    }
    Semaphore semaphore = slots.computeIfAbsent(exchange.model(), m -> new Semaphore(capacity));
    boolean acquired;
    try {
      acquired =
          semaphore.tryAcquire(properties.modelQueueWait().toMillis(), TimeUnit.MILLISECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      acquired = false;
    }
    if (!acquired) {
      Counter.builder("gateway.model.overloaded")
          .description("requests refused because a model had no free in-flight slot")
          .tag("model", exchange.model())
          .register(meters)
          .increment();
      throw new ApiException(
          HttpStatus.SERVICE_UNAVAILABLE,
          "overloaded_error",
          "model_overloaded",
          "model",
          "the model '" + exchange.model() + "' is at capacity; retry shortly",
          1L);
    }
    exchange.attribute(this, semaphore);
  }

  @Override
  public void finish(Exchange exchange, Outcome outcome) {
    Semaphore semaphore = exchange.attribute(this);
    if (semaphore != null) {
      semaphore.release();
    }
  }
}
