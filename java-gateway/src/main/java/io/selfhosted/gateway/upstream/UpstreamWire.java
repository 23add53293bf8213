package io.selfhosted.gateway.upstream;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import okhttp3.Response;
import org.springframework.lang.Nullable;
import org.springframework.stereotype.Component;

/**
 * The upstream wire format in one place: the chat-completions request body, the stream's chunks,
 * and the error bodies of the OpenAI protocol.
 */
@Component
public class UpstreamWire {

  private final ObjectMapper mapper;

  public UpstreamWire(ObjectMapper mapper) {
    this.mapper = mapper;
  }

  /**
   * The request body for one upstream: a streaming request that always asks for usage, which limits
   * and accounting need, or a request for one whole reply. It names the model as that upstream
   * knows it, and carries our extensions only to our own model service: other engines get the
   * standard chat-completions fields (some refuse unknown ones).
   */
  byte[] body(ChatCall call, boolean stream, UpstreamEndpoint endpoint) {
    return body(call, stream, endpoint, false, null);
  }

  /**
   * The request body, asking our model service for the generated token ids ({@code tokenIds}: what
   * continues the answer exactly should the replica fail), or continuing {@code partial} (an answer
   * another replica began): our model service gets its token ids ({@code continue_token_ids}, its
   * own extension, which counts them against {@code max_tokens}); other engines get its text as a
   * last assistant message to be continued (vLLM's {@code continue_final_message}) and the
   * remaining {@code max_tokens}.
   */
  byte[] body(
      ChatCall call,
      boolean stream,
      UpstreamEndpoint endpoint,
      boolean tokenIds,
      @Nullable PartialAnswer partial) {
    ObjectNode body = mapper.createObjectNode();
    body.put("model", endpoint.model() != null ? endpoint.model() : call.upstreamModel());
    ArrayNode messages = body.putArray("messages");
    for (ChatCall.Message message : call.messages()) {
      ObjectNode m = messages.addObject().put("role", message.role());
      if (message.content() != null) {
        m.put("content", message.content());
      }
      if (message.toolCalls() != null) {
        m.set("tool_calls", message.toolCalls());
      }
      if (message.toolCallId() != null) {
        m.put("tool_call_id", message.toolCallId());
      }
    }
    boolean ours = endpoint.engine().takesExtensions();
    int maxTokens = call.maxTokens();
    if (partial != null && !ours) {
      messages.addObject().put("role", "assistant").put("content", partial.text());
      body.put("continue_final_message", true);
      body.put("add_generation_prompt", false);
      maxTokens = Math.max(1, maxTokens - partial.tokens());
    }
    body.put("stream", stream);
    if (stream) {
      body.putObject("stream_options").put("include_usage", true);
    }
    body.put("max_tokens", maxTokens);
    body.put("temperature", call.temperature());
    body.put("top_p", call.topP());
    if (!call.stop().isEmpty()) {
      ArrayNode stop = body.putArray("stop");
      call.stop().forEach(stop::add);
    }
    if (call.seed() != null) {
      body.put("seed", call.seed());
    }
    if (call.ignoreEos() != null && ours) {
      body.put("ignore_eos", call.ignoreEos());
    }
    if (ours && (tokenIds || partial != null)) {
      body.put("return_token_ids", true);
    }
    if (ours && partial != null && !partial.tokenIds().isEmpty()) {
      ArrayNode ids = body.putArray("continue_token_ids");
      partial.tokenIds().forEach(ids::add);
    }
    // Standard fields that peer engines take too; sent only when the client asked for them, as
    // the client sent them.
    if (call.logprobs() != null) {
      body.put("logprobs", call.logprobs());
    }
    if (call.topLogprobs() != null) {
      body.put("top_logprobs", call.topLogprobs());
    }
    ChatCall.ReplyOptions options = call.options();
    if (options.tools() != null) {
      body.set("tools", options.tools());
    }
    if (options.toolChoice() != null) {
      body.set("tool_choice", options.toolChoice());
    }
    if (options.parallelToolCalls() != null) {
      body.put("parallel_tool_calls", options.parallelToolCalls());
    }
    if (options.responseFormat() != null) {
      body.set("response_format", options.responseFormat());
    }
    if (options.n() != null) {
      body.put("n", options.n());
    }
    try {
      return mapper.writeValueAsBytes(body);
    } catch (IOException e) {
      throw new IllegalArgumentException(e);
    }
  }

  /**
   * Parses one SSE data line into one chunk per choice it carries (a usage chunk without choices is
   * one chunk); an error object inside the stream becomes an UpstreamError.
   */
  Parsed parse(String data) {
    JsonNode node;
    try {
      node = mapper.readTree(data);
    } catch (IOException e) {
      return Parsed.failed(protocolError("the model service sent an unreadable event"));
    }
    if (!(node instanceof ObjectNode chunk)) {
      return Parsed.failed(protocolError("the model service sent an unexpected event"));
    }
    JsonNode error = chunk.get("error");
    if (error != null && error.isObject()) {
      return Parsed.failed(
          new UpstreamError(
              UpstreamError.Kind.IN_STREAM,
              0,
              error.path("message").asText("the model service failed"),
              error.path("type").asText("upstream_error"),
              error.path("code").asText("upstream_error"),
              null,
              null));
    }
    Chunk.Usage usage = null;
    JsonNode u = chunk.get("usage");
    if (u != null && u.isObject()) {
      usage =
          new Chunk.Usage(u.path("prompt_tokens").asInt(0), u.path("completion_tokens").asInt(0));
    }
    JsonNode choices = chunk.path("choices");
    if (!choices.isArray() || choices.size() <= 1) {
      return new Parsed(List.of(chunkOf(chunk, choices.path(0), usage)), null);
    }
    // Several choices in one chunk: one chunk each, the usage (if any) on the last.
    List<Chunk> split = new ArrayList<>(choices.size());
    for (int i = 0; i < choices.size(); i++) {
      ObjectNode one = chunk.deepCopy();
      one.putArray("choices").add(choices.get(i).deepCopy());
      boolean last = i == choices.size() - 1;
      if (!last) {
        one.remove("usage");
      }
      split.add(chunkOf(one, choices.get(i), last ? usage : null));
    }
    return new Parsed(split, null);
  }

  private static Chunk chunkOf(ObjectNode raw, JsonNode choice, @Nullable Chunk.Usage usage) {
    JsonNode delta = choice.path("delta");
    JsonNode content = delta.path("content");
    String finish =
        choice.path("finish_reason").isTextual() ? choice.get("finish_reason").asText() : null;
    List<Chunk.ToolCallPiece> pieces = new ArrayList<>();
    JsonNode calls = delta.path("tool_calls");
    for (int i = 0; i < calls.size(); i++) {
      pieces.add(Chunk.ToolCallPiece.of(calls.get(i), i));
    }
    return new Chunk(
        raw,
        choice.path("index").asInt(0),
        content.isTextual() ? content.asText() : "",
        pieces,
        finish,
        usage);
  }

  /**
   * A whole {@code chat.completion} as the chunks a stream of it would have carried: per choice one
   * with the content and its logprobs, one per tool call, the last with the finish reason; then one
   * with the usage.
   */
  Parsed wholeReply(@Nullable String body) {
    JsonNode node;
    try {
      node = body == null ? null : mapper.readTree(body);
    } catch (IOException e) {
      node = null;
    }
    JsonNode choices = node == null ? null : node.path("choices");
    if (choices == null || choices.isEmpty() || !choices.path(0).path("message").isObject()) {
      return Parsed.failed(protocolError("the model service sent an unreadable reply"));
    }
    List<Chunk> chunks = new ArrayList<>();
    for (int position = 0; position < choices.size(); position++) {
      JsonNode choice = choices.get(position);
      int index = choice.path("index").asInt(position);
      JsonNode message = choice.path("message");
      JsonNode calls = message.path("tool_calls");
      List<ObjectNode> parts = new ArrayList<>();
      ObjectNode content = chunkOf(node);
      ObjectNode first = content.putArray("choices").addObject().put("index", index);
      ObjectNode delta = first.putObject("delta").put("role", "assistant");
      if (message.path("content").isTextual() || calls.isEmpty()) {
        delta.put("content", message.path("content").asText(""));
      }
      if (choice.path("logprobs").isObject()) {
        first.set("logprobs", choice.get("logprobs"));
      }
      parts.add(content);
      for (int i = 0; i < calls.size(); i++) {
        JsonNode call = calls.get(i);
        ObjectNode piece = call.deepCopy();
        piece.put("index", i);
        ObjectNode one = chunkOf(node);
        ObjectNode oneChoice = one.putArray("choices").addObject().put("index", index);
        oneChoice.putObject("delta").putArray("tool_calls").add(piece);
        parts.add(one);
      }
      for (int i = 0; i < parts.size(); i++) {
        ObjectNode part = (ObjectNode) parts.get(i).get("choices").get(0);
        JsonNode finish = choice.path("finish_reason");
        if (i == parts.size() - 1 && finish.isTextual()) {
          part.put("finish_reason", finish.asText());
        } else {
          part.putNull("finish_reason");
        }
        chunks.addAll(parse(parts.get(i).toString()).chunks());
      }
    }
    if (node.path("usage").isObject()) {
      ObjectNode usage = chunkOf(node);
      usage.putArray("choices");
      usage.set("usage", node.get("usage"));
      chunks.addAll(parse(usage.toString()).chunks());
    } // otherwise the caller estimates usage
    return new Parsed(chunks, null);
  }

  private ObjectNode chunkOf(JsonNode reply) {
    ObjectNode chunk = mapper.createObjectNode();
    chunk.set("id", reply.path("id"));
    chunk.put("object", "chat.completion.chunk");
    chunk.set("created", reply.path("created"));
    chunk.set("model", reply.path("model"));
    return chunk;
  }

  /**
   * The usage chunk for a reply whose upstream reported none (engines that ignore {@code
   * stream_options}): estimated counts, marked {@code "estimated": true} in the usage object.
   */
  Chunk estimatedUsage(String id, UsageEstimate estimate) {
    ObjectNode raw = mapper.createObjectNode();
    raw.put("id", id);
    raw.put("object", "chat.completion.chunk");
    raw.put("created", java.time.Instant.now().getEpochSecond());
    raw.put("model", "");
    raw.putArray("choices");
    Chunk.Usage usage = estimate.usage();
    raw.putObject("usage")
        .put("prompt_tokens", usage.promptTokens())
        .put("completion_tokens", usage.completionTokens())
        .put("total_tokens", usage.total())
        .put("estimated", true);
    return new Chunk(raw, "", null, usage);
  }

  /** A parsed event: its chunks (one per choice), or an error. */
  record Parsed(List<Chunk> chunks, @Nullable UpstreamError error) {
    static Parsed failed(UpstreamError error) {
      return new Parsed(List.of(), error);
    }
  }

  static UpstreamError protocolError(String message) {
    return new UpstreamError(
        UpstreamError.Kind.IN_STREAM,
        0,
        message,
        "upstream_error",
        "upstream_protocol_error",
        null,
        null);
  }

  /** Classifies an HTTP error answer from its status, Retry-After and error envelope. */
  UpstreamError httpError(Response response, @Nullable String body) {
    Long retryAfter = null;
    String header = response.header("Retry-After");
    if (header != null) {
      try {
        retryAfter = Long.parseLong(header.trim());
      } catch (NumberFormatException ignored) {
        retryAfter = 1L;
      }
    }
    String message = "the model service answered HTTP " + response.code();
    String type = response.code() >= 500 ? "upstream_error" : "invalid_request_error";
    String code =
        response.code() == 503 ? "upstream_overloaded" : "upstream_http_" + response.code();
    String param = null;
    if (body != null && !body.isBlank()) {
      try {
        JsonNode error = mapper.readTree(body).path("error");
        if (error.path("message").isTextual()) {
          message = error.get("message").asText();
        }
        if (error.path("type").isTextual()) {
          type = error.get("type").asText();
        }
        if (error.path("code").isTextual()) {
          code = error.get("code").asText();
        }
        if (error.path("param").isTextual()) {
          param = error.get("param").asText();
        }
      } catch (IOException notJson) {
        // Keep the generic message: upstream bodies are not echoed verbatim.
      }
    }
    return new UpstreamError(
        UpstreamError.Kind.HTTP, response.code(), message, type, code, param, retryAfter);
  }
}
