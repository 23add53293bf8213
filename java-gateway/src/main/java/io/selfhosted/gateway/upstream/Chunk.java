package io.selfhosted.gateway.upstream;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import org.springframework.lang.Nullable;

/**
 * One upstream {@code chat.completion.chunk} of one choice: the raw JSON (relayed as is on /v1) and
 * what the gateway reads from it. An upstream chunk that carries several choices is split into one
 * chunk per choice ({@link UpstreamWire#parse}), so every stage sees one choice at a time.
 *
 * @param choice the choice's index ({@code choices[0].index}); 0 for a chunk without a choice
 * @param text the content delta, empty when the chunk carries none
 * @param toolCalls the tool-call fragments of the delta ({@code delta.tool_calls}), in order
 * @param finishReason set on the last chunk of a choice
 * @param usage set on the usage chunk
 */
public record Chunk(
    ObjectNode raw,
    int choice,
    String text,
    List<ToolCallPiece> toolCalls,
    @Nullable String finishReason,
    @Nullable Usage usage) {

  public Chunk {
    toolCalls = List.copyOf(toolCalls);
  }

  /** A chunk of the first choice without tool calls. */
  public Chunk(ObjectNode raw, String text, @Nullable String finishReason, @Nullable Usage usage) {
    this(raw, 0, text, List.of(), finishReason, usage);
  }

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
   * One fragment of a streamed tool call, as OpenAI streams them: the first fragment of a call
   * carries its id, type and function name; later ones only more of the arguments' JSON text.
   *
   * @param index the call's position among the choice's tool calls
   * @param arguments this fragment's piece of the arguments (may be empty)
   */
  public record ToolCallPiece(
      int index,
      @Nullable String id,
      @Nullable String type,
      @Nullable String name,
      String arguments) {

    /** The fragment as {@code delta.tool_calls[]} carries it. */
    public ObjectNode json() {
      ObjectNode node = JsonNodeFactory.instance.objectNode().put("index", index);
      if (id != null) {
        node.put("id", id);
      }
      if (type != null) {
        node.put("type", type);
      }
      ObjectNode function = node.putObject("function");
      if (name != null) {
        function.put("name", name);
      }
      function.put("arguments", arguments);
      return node;
    }

    /** The fragment read from {@code delta.tool_calls[]}; {@code position} when it has no index. */
    public static ToolCallPiece of(JsonNode node, int position) {
      JsonNode function = node.path("function");
      return new ToolCallPiece(
          node.path("index").isInt() ? node.get("index").asInt() : position,
          node.path("id").textValue(),
          node.path("type").textValue(),
          function.path("name").textValue(),
          function.path("arguments").isTextual() ? function.get("arguments").asText() : "");
    }
  }

  /**
   * A chunk made by the gateway itself (a local reply, a held-back tail, a stop), shaped like an
   * upstream {@code chat.completion.chunk}.
   */
  public static Chunk of(String id, String text, @Nullable String finishReason) {
    return of(id, 0, text, finishReason);
  }

  /** A chunk made by the gateway for choice {@code choice}. */
  public static Chunk of(String id, int choice, String text, @Nullable String finishReason) {
    ObjectNode raw = JsonNodeFactory.instance.objectNode();
    raw.put("id", id);
    raw.put("object", "chat.completion.chunk");
    raw.put("created", Instant.now().getEpochSecond());
    raw.put("model", "");
    ObjectNode delta = raw.putArray("choices").addObject().put("index", choice);
    delta.putObject("delta").put("content", text);
    if (finishReason == null) {
      delta.putNull("finish_reason");
    } else {
      delta.put("finish_reason", finishReason);
    }
    return new Chunk(raw, choice, text, List.of(), finishReason, null);
  }

  /** This chunk with other content text (a content check holding some of it back). */
  public Chunk withText(String newText) {
    ObjectNode copy = raw.deepCopy();
    if (copy.path("choices").path(0).path("delta") instanceof ObjectNode delta) {
      delta.put("content", newText);
    }
    return new Chunk(copy, choice, newText, toolCalls, finishReason, usage);
  }

  /**
   * This chunk with other tool-call fragments (a content check holding some arguments back); no
   * {@code tool_calls} at all when {@code pieces} is empty.
   */
  public Chunk withToolCalls(List<ToolCallPiece> pieces) {
    ObjectNode copy = raw.deepCopy();
    if (copy.path("choices").path(0).path("delta") instanceof ObjectNode delta) {
      if (pieces.isEmpty()) {
        delta.remove("tool_calls");
      } else {
        ArrayNode calls = delta.putArray("tool_calls");
        pieces.forEach(piece -> calls.add(piece.json()));
      }
    }
    return new Chunk(copy, choice, text, pieces, finishReason, usage);
  }

  /**
   * A chunk of this one's choice that carries only {@code pieces}: no content, finish reason or
   * usage (the content check sending one tool call's held tail on its own, ahead of the next call).
   */
  public Chunk toolCallsOnly(List<ToolCallPiece> pieces) {
    ObjectNode copy = raw.deepCopy();
    copy.remove("usage");
    ObjectNode choiceNode = copy.putArray("choices").addObject().put("index", choice);
    ArrayNode calls = choiceNode.putObject("delta").putArray("tool_calls");
    pieces.forEach(piece -> calls.add(piece.json()));
    choiceNode.putNull("finish_reason");
    return new Chunk(copy, choice, "", pieces, null, null);
  }

  /** This chunk without its finish reason and usage (they go out on a later chunk). */
  public Chunk withoutEnd() {
    if (finishReason == null && usage == null) {
      return this;
    }
    ObjectNode copy = raw.deepCopy();
    copy.remove("usage");
    if (copy.path("choices").path(0) instanceof ObjectNode choiceNode) {
      choiceNode.putNull("finish_reason");
    }
    return new Chunk(copy, choice, text, toolCalls, null, null);
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
    ObjectNode choiceNode = (ObjectNode) copy.get("choices").get(0);
    ObjectNode logprobs =
        choiceNode.get("logprobs") instanceof ObjectNode existing
            ? existing
            : choiceNode.putObject("logprobs");
    logprobs.putArray("content").addAll(entries);
    return new Chunk(copy, choice, text, toolCalls, finishReason, usage);
  }

  /** Whether this chunk has a choice, the place for content and logprobs. */
  public boolean hasChoice() {
    return raw.path("choices").path(0).isObject();
  }

  /** Whether this chunk carries generated output: content text or tool-call fragments. */
  public boolean hasOutput() {
    return !text.isEmpty() || !toolCalls.isEmpty();
  }

  /** The generated text this chunk carries: its content and its tool calls' names and arguments. */
  public long outputBytes() {
    long bytes = TokenEstimate.utf8Bytes(text);
    for (ToolCallPiece piece : toolCalls) {
      bytes += TokenEstimate.utf8Bytes(piece.arguments());
      if (piece.name() != null) {
        bytes += TokenEstimate.utf8Bytes(piece.name());
      }
    }
    return bytes;
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
