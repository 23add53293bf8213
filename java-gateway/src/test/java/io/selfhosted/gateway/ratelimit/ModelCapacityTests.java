package io.selfhosted.gateway.ratelimit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.selfhosted.gateway.auth.AllowedModels;
import io.selfhosted.gateway.auth.Caller;
import io.selfhosted.gateway.auth.KeyLimits;
import io.selfhosted.gateway.pipeline.Exchange;
import io.selfhosted.gateway.pipeline.Outcome;
import io.selfhosted.gateway.system.ApiException;
import io.selfhosted.gateway.upstream.ChatCall;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** The per-model in-flight cap: a bounded wait for a slot, then 503 with Retry-After. */
class ModelCapacityTests {

  private static final Caller CALLER =
      new Caller("k", "k", Caller.Role.USER, AllowedModels.ALL, KeyLimits.NONE);

  private static Exchange exchange(String model) {
    return new Exchange(
        "r",
        CALLER,
        model,
        "test",
        true,
        new ChatCall(model, List.of(), 1, 0, 1, List.of(), null, null),
        System.nanoTime());
  }

  private static Outcome done() {
    return new Outcome(Outcome.Status.COMPLETED, "stop", 1, 1, false, null, null, null, 1);
  }

  private static ModelCapacity capacity(Map<String, Integer> perModel, Duration wait) {
    return new ModelCapacity(
        new LimitProperties(Duration.ofHours(1), perModel, 0, wait),
        new LocalTokenCounters(),
        new SimpleMeterRegistry());
  }

  @Test
  void refusesPastTheCapWith503AfterTheBoundedWait() {
    ModelCapacity capacity = capacity(Map.of("big", 2), Duration.ofMillis(50));
    capacity.admit(exchange("big"));
    capacity.admit(exchange("big"));

    assertThatThrownBy(() -> capacity.admit(exchange("big")))
        .isInstanceOfSatisfying(
            ApiException.class,
            e -> {
              assertThat(e.status().value()).isEqualTo(503);
              assertThat(e.code()).isEqualTo("model_overloaded");
              assertThat(e.retryAfterSeconds()).isEqualTo(1L);
            });
    capacity.admit(exchange("other")); // models without a cap are not limited
  }

  @Test
  void aWaitingRequestGetsTheSlotAnEndingOneGivesBack() throws Exception {
    ModelCapacity capacity = capacity(Map.of("big", 1), Duration.ofSeconds(10));
    Exchange running = exchange("big");
    capacity.admit(running);

    CompletableFuture<Void> waiting =
        CompletableFuture.runAsync(() -> capacity.admit(exchange("big")));
    assertThat(waiting).isNotDone();
    capacity.finish(running, done());

    waiting.get(5, TimeUnit.SECONDS);
  }
}
