package io.selfhosted.gateway.upstream;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
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

  /**
   * The log probability entries of this chunk's tokens ({@code choices[0].logprobs.content}), in
   * order; empty when it carries none.
   */
  public List<JsonNode> logprobs() {
    JsonNode content = raw.path("choices").path(0).path("logprobs").path("content");
    if (!content.isArray()) {
      return List.of();
    }
    List<JsonNode> entries = new ArrayList<>(content.size());
    content.forEach(entries::add);
    return entries;
  }

  /**
   * This chunk with other log probability entries (a content check moving them with the text they
   * describe). A chunk without a choice stays as it is; one without a logprobs object gets one only
   * when there are entries to carry.
   */
  public Chunk withLogprobs(List<JsonNode> entries) {
    JsonNode original = raw.path("choices").path(0);
    if (!original.isObject() || (!original.path("logprobs").isObject() && entries.isEmpty())) {
      return this;
    }
    ObjectNode copy = raw.deepCopy();
    ObjectNode choice = (ObjectNode) copy.get("choices").get(0);
    ObjectNode logprobs =
        choice.get("logprobs") instanceof ObjectNode existing
            ? existing
            : choice.putObject("logprobs");
    logprobs.putArray("content").addAll(entries);
    return new Chunk(copy, text, finishReason, usage);
  }

  /** Whether this chunk has a choice, the place for content and logprobs. */
  public boolean hasChoice() {
    return raw.path("choices").path(0).isObject();
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
