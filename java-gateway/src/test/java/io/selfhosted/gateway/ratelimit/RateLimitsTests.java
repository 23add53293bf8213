package io.selfhosted.gateway.ratelimit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.github.bucket4j.BucketConfiguration;
import io.github.bucket4j.ConsumptionProbe;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.selfhosted.gateway.auth.AllowedModels;
import io.selfhosted.gateway.auth.Caller;
import io.selfhosted.gateway.auth.KeyLimits;
import io.selfhosted.gateway.pipeline.Exchange;
import io.selfhosted.gateway.system.ApiException;
import io.selfhosted.gateway.upstream.ChatCall;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** The rate-limit stage's edges: an unreachable store, and OpenAI's reset format. */
class RateLimitsTests {

  private static Exchange exchange(KeyLimits limits) {
    return new Exchange(
        "r",
        new Caller("k", "k", Caller.Role.USER, AllowedModels.ALL, limits),
        "demo-model",
        "test",
        true,
        new ChatCall(
            "demo-model",
            List.of(new ChatCall.Message("user", "hi")),
            16,
            0,
            1,
            List.of(),
            null,
            null),
        System.nanoTime());
  }

  @Test
  void anUnreachableBucketStoreRefusesLimitedKeysWith503() {
    BucketStore down =
        new BucketStore() {
          @Override
          public CompletableFuture<ConsumptionProbe> tryConsume(
              String key, BucketConfiguration configuration, long tokens) {
            return CompletableFuture.failedFuture(new IllegalStateException("connection refused"));
          }

          @Override
          public CompletableFuture<?> addTokens(
              String key, BucketConfiguration configuration, long tokens) {
            return CompletableFuture.failedFuture(new IllegalStateException("connection refused"));
          }

          @Override
          public CompletableFuture<?> consumeIgnoringLimits(
              String key, BucketConfiguration configuration, long tokens) {
            return CompletableFuture.failedFuture(new IllegalStateException("connection refused"));
          }

          @Override
          public String kind() {
            return "redis";
          }
        };
    RateLimits limits =
        new RateLimits(
            down,
            new LimitProperties(Duration.ofHours(1), Map.of(), 0, Duration.ZERO),
            new SimpleMeterRegistry());

    assertThatThrownBy(() -> limits.admit(exchange(new KeyLimits(10, null, null, null, null))))
        .isInstanceOfSatisfying(
            ApiException.class,
            e -> {
              assertThat(e.status().value()).isEqualTo(503);
              assertThat(e.code()).isEqualTo("rate_limiter_unavailable");
              assertThat(e.retryAfterSeconds()).isEqualTo(5L);
            });
    limits.admit(exchange(KeyLimits.NONE)); // a key without limits never asks the store
  }

  @Test
  void formatsResetTimesAsOpenAiDoes() {
    assertThat(RateLimits.duration(TimeUnit.MILLISECONDS.toNanos(20))).isEqualTo("20ms");
    assertThat(RateLimits.duration(TimeUnit.MILLISECONDS.toNanos(5_200))).isEqualTo("6s");
    assertThat(RateLimits.duration(TimeUnit.SECONDS.toNanos(90))).isEqualTo("1m30s");
    assertThat(RateLimits.duration(TimeUnit.HOURS.toNanos(2))).isEqualTo("2h0m0s");
  }
}
