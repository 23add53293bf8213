package io.selfhosted.gateway.usage;

import java.time.Instant;

/** One generation request as accounted: who, which model, how many tokens, how it ended. */
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
    Instant createdAt) {

  public int totalTokens() {
    return promptTokens + completionTokens;
  }
}
