package io.selfhosted.gateway.upstream;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
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
    ObjectNode body = mapper.createObjectNode();
    body.put("model", endpoint.model() != null ? endpoint.model() : call.upstreamModel());
    ArrayNode messages = body.putArray("messages");
    for (ChatCall.Message message : call.messages()) {
      messages.addObject().put("role", message.role()).put("content", message.content());
    }
    body.put("stream", stream);
    if (stream) {
      body.putObject("stream_options").put("include_usage", true);
    }
    body.put("max_tokens", call.maxTokens());
    body.put("temperature", call.temperature());
    body.put("top_p", call.topP());
    if (!call.stop().isEmpty()) {
      ArrayNode stop = body.putArray("stop");
      call.stop().forEach(stop::add);
    }
    if (call.seed() != null) {
      body.put("seed", call.seed());
    }
    if (call.ignoreEos() != null && endpoint.engine().takesExtensions()) {
      body.put("ignore_eos", call.ignoreEos());
    }
    // Standard fields that peer engines take too; sent only when the client asked for them.
    if (call.logprobs() != null) {
      body.put("logprobs", call.logprobs());
    }
    if (call.topLogprobs() != null) {
      body.put("top_logprobs", call.topLogprobs());
    }
    try {
      return mapper.writeValueAsBytes(body);
    } catch (IOException e) {
      throw new IllegalArgumentException(e);
    }
  }

  /** Parses one SSE data line; an error object inside the stream becomes an UpstreamError. */
  Parsed parse(String data) {
    JsonNode node;
    try {
      node = mapper.readTree(data);
    } catch (IOException e) {
      return new Parsed(null, protocolError("the model service sent an unreadable event"));
    }
    if (!(node instanceof ObjectNode chunk)) {
      return new Parsed(null, protocolError("the model service sent an unexpected event"));
    }
    JsonNode error = chunk.get("error");
    if (error != null && error.isObject()) {
      return new Parsed(
          null,
          new UpstreamError(
              UpstreamError.Kind.IN_STREAM,
              0,
              error.path("message").asText("the model service failed"),
              error.path("type").asText("upstream_error"),
              error.path("code").asText("upstream_error"),
              null,
              null));
    }
    JsonNode choice = chunk.path("choices").path(0);
    JsonNode content = choice.path("delta").path("content");
    String finish =
        choice.path("finish_reason").isTextual() ? choice.get("finish_reason").asText() : null;
    Chunk.Usage usage = null;
    JsonNode u = chunk.get("usage");
    if (u != null && u.isObject()) {
      usage =
          new Chunk.Usage(u.path("prompt_tokens").asInt(0), u.path("completion_tokens").asInt(0));
    }
    return new Parsed(
        new Chunk(chunk, content.isTextual() ? content.asText() : "", finish, usage), null);
  }

  /**
   * A whole {@code chat.completion} as the chunks a stream of it would have carried: one with the
   * content, its logprobs and the finish reason, one with the usage.
   */
  Parsed[] wholeReply(@Nullable String body) {
    JsonNode node;
    try {
      node = body == null ? null : mapper.readTree(body);
    } catch (IOException e) {
      node = null;
    }
    JsonNode choice = node == null ? null : node.path("choices").path(0);
    if (choice == null || !choice.path("message").isObject()) {
      return new Parsed[] {
        new Parsed(null, protocolError("the model service sent an unreadable reply"))
      };
    }
    ObjectNode content = chunkOf(node);
    ObjectNode delta = content.putArray("choices").addObject().put("index", 0);
    String text = choice.path("message").path("content").asText("");
    delta.putObject("delta").put("role", "assistant").put("content", text);
    if (choice.path("logprobs").isObject()) {
      delta.set("logprobs", choice.get("logprobs"));
    }
    JsonNode finish = choice.path("finish_reason");
    if (finish.isTextual()) {
      delta.put("finish_reason", finish.asText());
    } else {
      delta.putNull("finish_reason");
    }
    if (!node.path("usage").isObject()) {
      return new Parsed[] {parse(content.toString())}; // the caller estimates usage
    }
    ObjectNode usage = chunkOf(node);
    usage.putArray("choices");
    usage.set("usage", node.get("usage"));
    return new Parsed[] {
      parse(content.toString()), parse(usage.toString()),
    };
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

  /** A parsed event: a chunk or an error. */
  record Parsed(@Nullable Chunk chunk, @Nullable UpstreamError error) {}

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
