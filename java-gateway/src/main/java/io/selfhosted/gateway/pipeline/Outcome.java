package io.selfhosted.gateway.pipeline;

import io.selfhosted.gateway.system.ApiException;
import org.springframework.lang.Nullable;

/**
 * How a generation ended, with the tokens it used: as the model service reported them, or as the
 * gateway counted them when no usage arrived (a cancelled or failed stream).
 *
 * @param usageEstimated the token counts are the gateway's estimate: the upstream reported none (an
 *     engine without usage, a cancelled or failed stream)
 * @param ttftMillis time to the first token, null when none came
 */
public record Outcome(
    Status status,
    @Nullable String finishReason,
    int promptTokens,
    int completionTokens,
    boolean usageEstimated,
    @Nullable ApiException error,
    @Nullable String replica,
    @Nullable Long ttftMillis,
    long durationMillis) {

  /** How a generation ended. */
  public enum Status {
    /** The model finished (stop, length). */
    COMPLETED,
    /** The client or an operator stopped it. */
    CANCELLED,
    /** The upstream failed. */
    FAILED,
    /** A later admission stage refused it: nothing went upstream. */
    REJECTED;

    public String wireName() {
      return name().toLowerCase();
    }
  }

  public int totalTokens() {
    return promptTokens + completionTokens;
  }
}
