package io.selfhosted.gateway.ratelimit;

import io.github.bucket4j.BucketConfiguration;
import io.github.bucket4j.ConsumptionProbe;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.selfhosted.gateway.auth.KeyLimits;
import io.selfhosted.gateway.pipeline.Exchange;
import io.selfhosted.gateway.pipeline.Outcome;
import io.selfhosted.gateway.pipeline.Stage;
import io.selfhosted.gateway.system.ApiException;
import io.selfhosted.gateway.upstream.ChatCall;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.http.HttpStatus;
import org.springframework.stereotype.Component;

/**
 * Admission by the caller's key limits, with Bucket4j token buckets: concurrent streams (a slot
 * held for the whole stream), requests per minute, and tokens per minute (prompt + max_tokens
 * reserved up front, settled to the real usage at the end). The buckets are asked all at once; if
 * any says no, what the others gave is given back. Every answer carries OpenAI's {@code
 * x-ratelimit-*} headers; a refusal is 429 with {@code Retry-After}.
 */
@Component
public class RateLimits implements Stage {

  private static final Logger log = LoggerFactory.getLogger(RateLimits.class);
  private static final Duration MINUTE = Duration.ofMinutes(1);

  private final BucketStore store;
  private final Duration slotRecovery;
  private final MeterRegistry meters;

  RateLimits(BucketStore store, LimitProperties properties, MeterRegistry meters) {
    this.store = store;
    this.slotRecovery = properties.streamSlotRecovery();
    this.meters = meters;
  }

  /** Which limit a bucket enforces. */
  private enum Kind {
    STREAMS,
    REQUESTS,
    TOKENS
  }

  /** One bucket an exchange draws from, and how much it took. */
  private record Draw(
      Kind kind, String key, BucketConfiguration configuration, long limit, long n) {}

  @Override
  public void admit(Exchange exchange) {
    List<Draw> draws = draws(exchange);
    if (draws.isEmpty()) {
      return;
    }
    List<CompletableFuture<ConsumptionProbe>> asked = new ArrayList<>(draws.size());
    for (Draw draw : draws) {
      asked.add(store.tryConsume(draw.key(), draw.configuration(), draw.n()));
    }
    // Every answer is awaited, failed or not, so that whatever was taken can be given back.
    List<ConsumptionProbe> probes = new ArrayList<>(draws.size());
    RuntimeException storeFailed = null;
    for (CompletableFuture<ConsumptionProbe> answer : asked) {
      try {
        probes.add(answer.join());
      } catch (RuntimeException e) {
        probes.add(null);
        storeFailed = e;
      }
    }
    Draw refused = null;
    ConsumptionProbe refusal = null;
    for (int i = 0; i < draws.size(); i++) {
      Draw draw = draws.get(i);
      ConsumptionProbe probe = probes.get(i);
      if (probe == null) {
        continue;
      }
      if (draw.kind() != Kind.STREAMS) {
        String name = draw.kind() == Kind.REQUESTS ? "requests" : "tokens";
        exchange.header("x-ratelimit-limit-" + name, Long.toString(draw.limit()));
        exchange.header("x-ratelimit-remaining-" + name, Long.toString(probe.getRemainingTokens()));
        exchange.header("x-ratelimit-reset-" + name, duration(probe.getNanosToWaitForReset()));
      }
      if (!probe.isConsumed() && refused == null) {
        refused = draw;
        refusal = probe;
      }
    }
    if (storeFailed == null && refused == null) {
      exchange.attribute(this, draws);
      return;
    }
    for (int i = 0; i < draws.size(); i++) {
      if (probes.get(i) != null && probes.get(i).isConsumed()) {
        giveBack(draws.get(i), draws.get(i).n());
      }
    }
    throw storeFailed != null
        ? unavailable(exchange, storeFailed)
        : refused(exchange, refused, refusal).withHeaders(exchange.headers());
  }

  private List<Draw> draws(Exchange exchange) {
    KeyLimits limits = exchange.caller().limits();
    String key = exchange.caller().keyId();
    List<Draw> draws = new ArrayList<>(3);
    if (limits.concurrentStreams() != null) {
      int slots = limits.concurrentStreams();
      // A slot comes back when its stream ends; the slow refill only recovers the slots of a
      // gateway that died mid-stream.
      draws.add(
          new Draw(
              Kind.STREAMS,
              key + ":streams:" + slots,
              perPeriod(slots, slotRecovery.multipliedBy(slots)),
              slots,
              1));
    }
    if (limits.requestsPerMinute() != null) {
      int perMinute = limits.requestsPerMinute();
      draws.add(
          new Draw(
              Kind.REQUESTS,
              key + ":requests:" + perMinute,
              perPeriod(perMinute, MINUTE),
              perMinute,
              1));
    }
    if (limits.tokensPerMinute() != null) {
      int perMinute = limits.tokensPerMinute();
      // Prompt + max_tokens for each choice, but never more than the bucket holds, or the request
      // could never pass; the real count is settled when the stream ends.
      ChatCall call = exchange.call();
      long reserve =
          Math.min(
              perMinute,
              (long) exchange.promptTokenEstimate() + (long) call.maxTokens() * call.choices());
      draws.add(
          new Draw(
              Kind.TOKENS,
              key + ":tokens:" + perMinute,
              perPeriod(perMinute, MINUTE),
              perMinute,
              reserve));
    }
    return draws;
  }

  @Override
  public void finish(Exchange exchange, Outcome outcome) {
    List<Draw> draws = exchange.attribute(this);
    if (draws == null) {
      return;
    }
    boolean rejected = outcome.status() == Outcome.Status.REJECTED;
    for (Draw draw : draws) {
      switch (draw.kind()) {
        case STREAMS -> giveBack(draw, 1);
        case REQUESTS -> {
          if (rejected) {
            giveBack(draw, 1); // a later stage refused it: it was never served
          }
        }
        case TOKENS -> {
          long unused = rejected ? draw.n() : draw.n() - outcome.totalTokens();
          if (unused > 0) {
            giveBack(draw, unused);
          } else if (unused < 0) {
            // Used more than it reserved: a debt that the refill pays off.
            store
                .consumeIgnoringLimits(draw.key(), draw.configuration(), -unused)
                .whenComplete((done, e) -> logLost(draw, e));
          }
        }
      }
    }
  }

  /** Not waited for: the ending stream goes on; later requests of this gateway queue behind it. */
  private void giveBack(Draw draw, long tokens) {
    store
        .addTokens(draw.key(), draw.configuration(), tokens)
        .whenComplete((done, e) -> logLost(draw, e));
  }

  private static void logLost(Draw draw, Throwable e) {
    if (e != null) {
      log.warn("could not settle the {} bucket of {}: {}", draw.kind(), draw.key(), e.toString());
    }
  }

  private static BucketConfiguration perPeriod(long capacity, Duration period) {
    return BucketConfiguration.builder()
        .addLimit(limit -> limit.capacity(capacity).refillGreedy(capacity, period))
        .build();
  }

  private ApiException refused(Exchange exchange, Draw draw, ConsumptionProbe probe) {
    String message =
        switch (draw.kind()) {
          case STREAMS ->
              "this API key already has "
                  + draw.limit()
                  + " streams open; wait for one to end (limit: concurrent streams)";
          case REQUESTS -> "rate limit of " + draw.limit() + " requests per minute reached";
          case TOKENS -> "rate limit of " + draw.limit() + " tokens per minute reached";
        };
    long retryAfter =
        draw.kind() == Kind.STREAMS ? 1 : Math.max(1, ceilSeconds(probe.getNanosToWaitForRefill()));
    Counter.builder("gateway.ratelimit.refused")
        .description("requests refused by a key's rate limit")
        .tag("limit", draw.kind().name().toLowerCase())
        .tag("store", store.kind())
        .register(meters)
        .increment();
    log.info(
        "request {} of key {} refused: {} limit",
        exchange.requestId(),
        exchange.caller().keyId(),
        draw.kind().name().toLowerCase());
    return new ApiException(
        HttpStatus.TOO_MANY_REQUESTS,
        "rate_limit_error",
        "rate_limit_exceeded",
        null,
        message,
        retryAfter);
  }

  /** The bucket store (Redis) cannot be reached: refuse clearly rather than serve unlimited. */
  private ApiException unavailable(Exchange exchange, RuntimeException e) {
    log.error(
        "rate limits of key {} could not be checked in {}: {}",
        exchange.caller().keyId(),
        store.kind(),
        e.toString());
    return new ApiException(
        HttpStatus.SERVICE_UNAVAILABLE,
        "overloaded_error",
        "rate_limiter_unavailable",
        null,
        "the rate limiter is unavailable; retry shortly",
        5L);
  }

  private static long ceilSeconds(long nanos) {
    return (nanos + 999_999_999L) / 1_000_000_000L;
  }

  /** OpenAI's reset format: "20ms", "6s", "1m30s", "2h0m0s". */
  static String duration(long nanos) {
    long millis = TimeUnit.NANOSECONDS.toMillis(Math.max(0, nanos));
    if (millis < 1000) {
      return millis + "ms";
    }
    long seconds = (millis + 999) / 1000;
    if (seconds < 60) {
      return seconds + "s";
    }
    if (seconds < 3600) {
      return seconds / 60 + "m" + seconds % 60 + "s";
    }
    return seconds / 3600 + "h" + (seconds % 3600) / 60 + "m" + seconds % 60 + "s";
  }
}
