package io.selfhosted.gateway.upstream;

import com.fasterxml.jackson.databind.node.ObjectNode;
import org.springframework.lang.Nullable;

/**
 * One upstream {@code chat.completion.chunk}: the raw JSON (relayed as is on /v1) and what the
 * gateway reads from it.
 *
 * @param text the content delta, empty when the chunk carries none
 * @param finishReason set on the last content chunk
 * @param usage set on the usage chunk
 */
public record Chunk(
    ObjectNode raw, String text, @Nullable String finishReason, @Nullable Usage usage) {

  /** Token counts as the model service reports them. */
  public record Usage(int promptTokens, int completionTokens) {
    public int total() {
      return promptTokens + completionTokens;
    }
  }

  /** A chunk that carries only usage (OpenAI's {@code include_usage} chunk has no choices). */
  public boolean usageOnly() {
    return usage != null && raw.path("choices").isEmpty();
  }
}
