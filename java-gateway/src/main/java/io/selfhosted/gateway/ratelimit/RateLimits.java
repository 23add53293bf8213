package io.selfhosted.gateway.ratelimit;

import io.github.bucket4j.Bucket;
import io.github.bucket4j.BucketConfiguration;
import io.github.bucket4j.ConsumptionProbe;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.selfhosted.gateway.auth.KeyLimits;
import io.selfhosted.gateway.pipeline.Exchange;
import io.selfhosted.gateway.pipeline.Outcome;
import io.selfhosted.gateway.pipeline.Stage;
import io.selfhosted.gateway.system.ApiException;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.core.annotation.Order;
import org.springframework.http.HttpStatus;
import org.springframework.stereotype.Component;

/**
 * Admission by the caller's key limits, with Bucket4j token buckets: requests per minute; tokens
 * per minute, reserving prompt + max_tokens up front and settling to the real usage at the end; and
 * concurrent streams, a slot held for the whole stream. Every answer carries OpenAI's {@code
 * x-ratelimit-*} headers; a refusal is 429 with {@code Retry-After}.
 */
@Component
@Order(100)
class RateLimits implements Stage {

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

  /** What one exchange took, given back or settled when it ends. */
  private static final class Held {
    Bucket streams;
    Bucket requests;
    Bucket tokens;
    long reservedTokens;
  }

  @Override
  public void admit(Exchange exchange) {
    KeyLimits limits = exchange.caller().limits();
    String key = exchange.caller().keyId();
    Held held = new Held();
    try {
      if (limits.concurrentStreams() != null) {
        int slots = limits.concurrentStreams();
        // A slot comes back when its stream ends; the slow refill only recovers slots that a
        // gateway which died mid-stream could not give back.
        Bucket bucket =
            store.bucket(
                key + ":streams:" + slots, perPeriod(slots, slotRecovery.multipliedBy(slots)));
        if (!bucket.tryConsume(1)) {
          throw refused(
              exchange,
              "concurrent_streams",
              "this API key already has "
                  + slots
                  + " streams open; wait for one to end (limit: concurrent streams)",
              1);
        }
        held.streams = bucket;
      }
      if (limits.requestsPerMinute() != null) {
        int perMinute = limits.requestsPerMinute();
        Bucket bucket = store.bucket(key + ":requests:" + perMinute, perPeriod(perMinute, MINUTE));
        ConsumptionProbe probe = bucket.tryConsumeAndReturnRemaining(1);
        headers(exchange, "requests", perMinute, probe);
        if (!probe.isConsumed()) {
          throw refused(
              exchange,
              "requests",
              "rate limit of " + perMinute + " requests per minute reached",
              probe.getNanosToWaitForRefill());
        }
        held.requests = bucket;
      }
      if (limits.tokensPerMinute() != null) {
        int perMinute = limits.tokensPerMinute();
        Bucket bucket = store.bucket(key + ":tokens:" + perMinute, perPeriod(perMinute, MINUTE));
        // Prompt + max_tokens, but never more than the bucket holds, or the request could never
        // pass; the real count is settled when the stream ends.
        long reserve =
            Math.min(
                perMinute, (long) exchange.promptTokenEstimate() + exchange.call().maxTokens());
        ConsumptionProbe probe = bucket.tryConsumeAndReturnRemaining(reserve);
        headers(exchange, "tokens", perMinute, probe);
        if (!probe.isConsumed()) {
          throw refused(
              exchange,
              "tokens",
              "rate limit of " + perMinute + " tokens per minute reached",
              probe.getNanosToWaitForRefill());
        }
        held.tokens = bucket;
        held.reservedTokens = reserve;
      }
    } catch (ApiException refused) {
      giveBack(held, true);
      throw refused.withHeaders(exchange.headers());
    }
    exchange.attribute(this, held);
  }

  @Override
  public void finish(Exchange exchange, Outcome outcome) {
    Held held = exchange.attribute(this);
    if (held == null) {
      return;
    }
    giveBack(held, outcome.status() == Outcome.Status.REJECTED);
    if (held.tokens != null && outcome.status() != Outcome.Status.REJECTED) {
      long unused = held.reservedTokens - outcome.totalTokens();
      if (unused > 0) {
        held.tokens.addTokens(unused);
      } else if (unused < 0) {
        held.tokens.consumeIgnoringRateLimits(-unused); // used more than reserved: owe it
      }
    }
  }

  /** Gives back the stream slot, and on a refusal also the request and its reserved tokens. */
  private static void giveBack(Held held, boolean refused) {
    if (held.streams != null) {
      held.streams.addTokens(1);
      held.streams = null;
    }
    if (refused) {
      if (held.requests != null) {
        held.requests.addTokens(1);
      }
      if (held.tokens != null) {
        held.tokens.addTokens(held.reservedTokens);
        held.tokens = null;
      }
    }
  }

  private static BucketConfiguration perPeriod(long capacity, Duration period) {
    return BucketConfiguration.builder()
        .addLimit(limit -> limit.capacity(capacity).refillGreedy(capacity, period))
        .build();
  }

  private static void headers(Exchange exchange, String kind, long limit, ConsumptionProbe probe) {
    exchange.header("x-ratelimit-limit-" + kind, Long.toString(limit));
    exchange.header("x-ratelimit-remaining-" + kind, Long.toString(probe.getRemainingTokens()));
    exchange.header("x-ratelimit-reset-" + kind, duration(probe.getNanosToWaitForReset()));
  }

  private ApiException refused(Exchange exchange, String limit, String message, long waitNanos) {
    return refused(exchange, limit, message, Math.max(1, ceilSeconds(waitNanos)));
  }

  private ApiException refused(Exchange exchange, String limit, String message, int retryAfter) {
    Counter.builder("gateway.ratelimit.refused")
        .description("requests refused by a key's rate limit")
        .tag("limit", limit)
        .tag("store", store.kind())
        .register(meters)
        .increment();
    log.info(
        "request {} of key {} refused: {} limit",
        exchange.requestId(),
        exchange.caller().keyId(),
        limit);
    return new ApiException(
        HttpStatus.TOO_MANY_REQUESTS,
        "rate_limit_error",
        "rate_limit_exceeded",
        null,
        message,
        (long) retryAfter);
  }

  private static int ceilSeconds(long nanos) {
    return (int) Math.min(Integer.MAX_VALUE, (nanos + 999_999_999L) / 1_000_000_000L);
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
