package io.selfhosted.gateway.chat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.selfhosted.gateway.system.ApiException;
import io.selfhosted.gateway.system.GatewayProperties.ModelProfile;
import java.util.List;
import java.util.Set;
import org.springframework.stereotype.Component;

/**
 * Validates client requests field by field (so a wrong type names its field) and builds the
 * upstream chat-completions body. Nothing invalid reaches the model service.
 */
@Component
public class ChatRequests {

  static final int MAX_QUERY_CHARS = 32_000;
  private static final Set<String> ROLES = Set.of("system", "user", "assistant");
  private static final JsonNodeFactory NODES = JsonNodeFactory.instance;

  private final ModelProfiles profiles;

  public ChatRequests(ModelProfiles profiles) {
    this.profiles = profiles;
  }

  /** A validated OpenAI-compatible request and the body to send upstream. */
  public record Completion(
      ModelProfile profile, boolean stream, boolean includeUsage, ObjectNode upstreamBody) {}

  /** A validated product request: a model and the user's query. */
  public record Query(ModelProfile profile, String query) {}

  public Completion parseCompletion(JsonNode body) {
    ObjectNode request = object(body);
    ModelProfile profile = profiles.resolve(text(request, "model", true));
    JsonNode messagesNode = request.get("messages");
    if (messagesNode == null || !messagesNode.isArray() || messagesNode.isEmpty()) {
      throw ApiException.invalid("messages", "messages must be a non-empty array");
    }
    ArrayNode messages = NODES.arrayNode();
    boolean hasSystem = false;
    for (int i = 0; i < messagesNode.size(); i++) {
      JsonNode message = messagesNode.get(i);
      String param = "messages[" + i + "]";
      if (!message.isObject()) {
        throw ApiException.invalid(param, param + " must be an object");
      }
      JsonNode role = message.get("role");
      if (role == null || !role.isTextual() || !ROLES.contains(role.asText())) {
        throw ApiException.invalid(
            param + ".role", param + ".role must be one of system, user, assistant");
      }
      hasSystem |= "system".equals(role.asText());
      messages.add(
          NODES.objectNode().put("role", role.asText()).put("content", content(message, param)));
    }
    if (!hasSystem) {
      prependSystemPrompt(messages, profile);
    }
    boolean stream = bool(request, "stream", false);
    JsonNode options = request.get("stream_options");
    boolean includeUsage = false;
    if (options != null && !options.isNull()) {
      if (!options.isObject()) {
        throw ApiException.invalid("stream_options", "stream_options must be an object");
      }
      includeUsage = bool((ObjectNode) options, "include_usage", false);
    }
    JsonNode n = request.get("n");
    if (n != null
        && !n.isNull()
        && !(n.canConvertToInt() && n.isIntegralNumber() && n.asInt() == 1)) {
      throw ApiException.invalid("n", "only n = 1 is supported");
    }
    Integer maxTokens = integer(request, "max_completion_tokens");
    if (maxTokens == null) {
      maxTokens = integer(request, "max_tokens");
    }
    ObjectNode upstream =
        upstreamBody(
            profile,
            messages,
            stream,
            maxTokens,
            number(request, "temperature", 0, 2),
            number(request, "top_p", 0, 1));
    JsonNode stop = request.get("stop");
    if (stop != null && !stop.isNull()) {
      upstream.set("stop", stop(stop));
    }
    Integer seed = integer(request, "seed");
    if (seed != null) {
      upstream.put("seed", seed);
    }
    // vLLM's extension, honoured by our model service: generate max_tokens whatever the model
    // says, as load tests and benchmarks need.
    if (request.has("ignore_eos")) {
      upstream.put("ignore_eos", bool(request, "ignore_eos", false));
    }
    return new Completion(profile, stream, includeUsage, upstream);
  }

  public Query parseQuery(JsonNode body) {
    ObjectNode request = object(body);
    ModelProfile profile = profiles.resolve(text(request, "model", true));
    String query = text(request, "query", true);
    if (query.isBlank()) {
      throw ApiException.invalid("query", "query must not be empty");
    }
    if (query.length() > MAX_QUERY_CHARS) {
      throw ApiException.invalid(
          "query", "query is longer than " + MAX_QUERY_CHARS + " characters");
    }
    return new Query(profile, query);
  }

  /** The upstream body of a product turn: system prompt, earlier turns, then the query. */
  public ObjectNode productBody(ModelProfile profile, List<HistoryEntry> history, String query) {
    ArrayNode messages = NODES.arrayNode();
    prependSystemPrompt(messages, profile);
    for (HistoryEntry entry : history) {
      messages.add(NODES.objectNode().put("role", entry.role()).put("content", entry.content()));
    }
    messages.add(NODES.objectNode().put("role", "user").put("content", query));
    return upstreamBody(profile, messages, true, null, null, null);
  }

  /** One earlier turn of a conversation. */
  public record HistoryEntry(String role, String content) {}

  private static ObjectNode upstreamBody(
      ModelProfile profile,
      ArrayNode messages,
      boolean stream,
      Integer maxTokens,
      Double temperature,
      Double topP) {
    ObjectNode body = NODES.objectNode();
    body.put("model", ModelProfiles.upstreamModel(profile));
    body.set("messages", messages);
    body.put("stream", stream);
    if (stream) {
      // Always ask for usage: the gateway needs it for finish events and metrics.
      body.set("stream_options", NODES.objectNode().put("include_usage", true));
    }
    int limit = Math.max(1, profile.maxMaxTokens());
    body.put(
        "max_tokens", Math.min(limit, maxTokens == null ? profile.defaultMaxTokens() : maxTokens));
    body.put("temperature", temperature == null ? profile.defaultTemperature() : temperature);
    body.put("top_p", topP == null ? profile.defaultTopP() : topP);
    return body;
  }

  private static void prependSystemPrompt(ArrayNode messages, ModelProfile profile) {
    if (profile.systemPrompt() != null && !profile.systemPrompt().isBlank()) {
      messages.insert(
          0, NODES.objectNode().put("role", "system").put("content", profile.systemPrompt()));
    }
  }

  private static ObjectNode object(JsonNode body) {
    if (body == null || !body.isObject()) {
      throw ApiException.invalid(null, "request body must be a JSON object");
    }
    return (ObjectNode) body;
  }

  private static String text(ObjectNode request, String field, boolean required) {
    JsonNode value = request.get(field);
    if (value == null || value.isNull()) {
      if (required) {
        throw ApiException.invalid(field, field + " is required");
      }
      return null;
    }
    if (!value.isTextual()) {
      throw ApiException.invalid(field, field + " must be a string");
    }
    return value.asText();
  }

  private static String content(JsonNode message, String param) {
    JsonNode content = message.get("content");
    if (content != null && content.isTextual()) {
      return content.asText();
    }
    if (content != null && content.isArray()) {
      // OpenAI content parts: only text parts are meaningful to a text model.
      StringBuilder text = new StringBuilder();
      for (JsonNode part : content) {
        if (!"text".equals(part.path("type").asText()) || !part.path("text").isTextual()) {
          throw ApiException.invalid(param + ".content", "only text content parts are supported");
        }
        text.append(part.get("text").asText());
      }
      return text.toString();
    }
    throw ApiException.invalid(param + ".content", param + ".content must be a string");
  }

  private static boolean bool(ObjectNode request, String field, boolean fallback) {
    JsonNode value = request.get(field);
    if (value == null || value.isNull()) {
      return fallback;
    }
    if (!value.isBoolean()) {
      throw ApiException.invalid(field, field + " must be a boolean");
    }
    return value.asBoolean();
  }

  private static Integer integer(ObjectNode request, String field) {
    JsonNode value = request.get(field);
    if (value == null || value.isNull()) {
      return null;
    }
    if (!value.isIntegralNumber() || !value.canConvertToInt() || value.asInt() < 0) {
      throw ApiException.invalid(field, field + " must be a non-negative integer");
    }
    if (!"seed".equals(field) && value.asInt() < 1) {
      throw ApiException.invalid(field, field + " must be at least 1");
    }
    return value.asInt();
  }

  private static Double number(ObjectNode request, String field, double min, double max) {
    JsonNode value = request.get(field);
    if (value == null || value.isNull()) {
      return null;
    }
    if (!value.isNumber() || value.asDouble() < min || value.asDouble() > max) {
      throw ApiException.invalid(field, field + " must be a number between " + min + " and " + max);
    }
    return value.asDouble();
  }

  private static JsonNode stop(JsonNode stop) {
    if (stop.isTextual()) {
      return NODES.arrayNode().add(stop.asText());
    }
    if (stop.isArray() && stop.size() <= 4) {
      for (JsonNode item : stop) {
        if (!item.isTextual()) {
          throw ApiException.invalid("stop", "stop must be a string or an array of strings");
        }
      }
      return stop;
    }
    throw ApiException.invalid("stop", "stop must be a string or an array of up to 4 strings");
  }
}
