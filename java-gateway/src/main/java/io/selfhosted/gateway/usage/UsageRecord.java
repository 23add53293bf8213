package io.selfhosted.gateway.usage;

import java.time.Instant;

/**
 * One generation request as accounted: who, which model, how many tokens, how it ended.
 *
 * @param degraded the degradation reasons (maintenance, fallback_reply, ...), null when none
 */
public record UsageRecord(
    String requestId,
    String keyId,
    String model,
    String surface,
    int promptTokens,
    int completionTokens,
    Long ttftMs,
    long durationMs,
    String status,
    String finishReason,
    String replica,
    String degraded,
    Instant createdAt) {

  public int totalTokens() {
    return promptTokens + completionTokens;
  }
}
