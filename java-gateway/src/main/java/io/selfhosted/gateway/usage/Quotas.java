package io.selfhosted.gateway.usage;

import io.selfhosted.gateway.auth.KeyLimits;
import io.selfhosted.gateway.pipeline.Exchange;
import io.selfhosted.gateway.pipeline.Stage;
import io.selfhosted.gateway.system.ApiException;
import java.time.Duration;
import java.time.Instant;
import java.time.LocalDate;
import java.time.ZoneOffset;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.springframework.http.HttpStatus;
import org.springframework.stereotype.Component;

/**
 * Admission by token budget: a key with a daily or monthly quota (UTC calendar periods) is refused
 * with 429 {@code insufficient_quota} once the tokens it used in the period reach the budget. Use
 * is read from the usage records, plus what this gateway recorded but has not written yet.
 */
@Component
public class Quotas implements Stage {

  private final UsageRepository repository;
  private final UsageRecorder recorder;
  private final Duration cacheTtl;
  private final Map<String, Cached> used = new ConcurrentHashMap<>();

  Quotas(UsageRepository repository, UsageRecorder recorder, UsageProperties properties) {
    this.repository = repository;
    this.recorder = recorder;
    this.cacheTtl = properties.quotaCacheTtl();
    recorder.onWritten(this::forget);
  }

  private record Cached(long tokens, long loadedNanos) {}

  @Override
  public void admit(Exchange exchange) {
    KeyLimits limits = exchange.caller().limits();
    String key = exchange.caller().keyId();
    LocalDate today = LocalDate.now(ZoneOffset.UTC);
    if (limits.tokensPerDay() != null) {
      check(key, "day", today, today.plusDays(1), limits.tokensPerDay());
    }
    if (limits.tokensPerMonth() != null) {
      LocalDate first = today.withDayOfMonth(1);
      check(key, "month", first, first.plusMonths(1), limits.tokensPerMonth());
    }
  }

  private void check(String key, String period, LocalDate start, LocalDate end, long budget) {
    Instant from = start.atStartOfDay(ZoneOffset.UTC).toInstant();
    long tokens = usedSince(key, from) + recorder.pendingTokens(key);
    if (tokens >= budget) {
      Instant reset = end.atStartOfDay(ZoneOffset.UTC).toInstant();
      throw new ApiException(
          HttpStatus.TOO_MANY_REQUESTS,
          "insufficient_quota",
          "insufficient_quota",
          null,
          "this API key has used its "
              + budget
              + " tokens for the "
              + period
              + "; the quota renews at "
              + reset,
          Math.max(1, Duration.between(Instant.now(), reset).toSeconds()));
    }
  }

  private long usedSince(String key, Instant from) {
    String cacheKey = key + "@" + from;
    long now = System.nanoTime();
    Cached hit = used.get(cacheKey);
    if (hit != null && now - hit.loadedNanos() < cacheTtl.toNanos()) {
      return hit.tokens();
    }
    long tokens = repository.tokensSince(key, from);
    used.put(cacheKey, new Cached(tokens, now));
    return tokens;
  }

  private void forget(List<UsageRecord> written) {
    Set<String> keys = new HashSet<>();
    for (UsageRecord record : written) {
      keys.add(record.keyId());
    }
    used.keySet().removeIf(k -> keys.contains(k.substring(0, k.indexOf('@'))));
  }
}
