package io.selfhosted.gateway.upstream;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Instant;
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

  /**
   * Token counts as the model service reports them, or as the gateway estimated them for an
   * upstream that reports none ({@code estimated}).
   */
  public record Usage(int promptTokens, int completionTokens, boolean estimated) {
    public Usage(int promptTokens, int completionTokens) {
      this(promptTokens, completionTokens, false);
    }

    public int total() {
      return promptTokens + completionTokens;
    }
  }

  /**
   * A chunk made by the gateway itself (a local reply, a held-back tail, a stop), shaped like an
   * upstream {@code chat.completion.chunk}.
   */
  public static Chunk of(String id, String text, @Nullable String finishReason) {
    ObjectNode raw = JsonNodeFactory.instance.objectNode();
    raw.put("id", id);
    raw.put("object", "chat.completion.chunk");
    raw.put("created", Instant.now().getEpochSecond());
    raw.put("model", "");
    ObjectNode choice = raw.putArray("choices").addObject().put("index", 0);
    choice.putObject("delta").put("content", text);
    if (finishReason == null) {
      choice.putNull("finish_reason");
    } else {
      choice.put("finish_reason", finishReason);
    }
    return new Chunk(raw, text, finishReason, null);
  }

  /** This chunk with other content text (a content check holding some of it back). */
  public Chunk withText(String newText) {
    ObjectNode copy = raw.deepCopy();
    if (copy.path("choices").path(0).path("delta") instanceof ObjectNode delta) {
      delta.put("content", newText);
    }
    return new Chunk(copy, newText, finishReason, usage);
  }

  /** This chunk's id, or {@code fallback} when it has none. */
  public String id(String fallback) {
    return raw.path("id").isTextual() ? raw.get("id").asText() : fallback;
  }

  /** A chunk that carries only usage (OpenAI's {@code include_usage} chunk has no choices). */
  public boolean usageOnly() {
    return usage != null && raw.path("choices").isEmpty();
  }
}
