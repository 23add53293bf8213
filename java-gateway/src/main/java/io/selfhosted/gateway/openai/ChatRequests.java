package io.selfhosted.gateway.openai;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.selfhosted.gateway.models.ModelProfiles;
import io.selfhosted.gateway.models.ModelProperties.ModelProfile;
import io.selfhosted.gateway.system.ApiException;
import io.selfhosted.gateway.upstream.ChatCall;
import java.util.ArrayList;
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

  private final ModelProfiles profiles;

  public ChatRequests(ModelProfiles profiles) {
    this.profiles = profiles;
  }

  /** A validated OpenAI-compatible request and the call it makes upstream. */
  public record Completion(
      ModelProfile profile, boolean stream, boolean includeUsage, ChatCall call) {}

  /** A validated product request: a model and the user's query. */
  public record Query(ModelProfile profile, String query) {}

  public Completion parseCompletion(JsonNode body) {
    ObjectNode request = object(body);
    ModelProfile profile = profiles.resolve(text(request, "model", true));
    JsonNode messagesNode = request.get("messages");
    if (messagesNode == null || !messagesNode.isArray() || messagesNode.isEmpty()) {
      throw ApiException.invalid("messages", "messages must be a non-empty array");
    }
    List<ChatCall.Message> messages = new ArrayList<>();
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
      messages.add(new ChatCall.Message(role.asText(), content(message, param)));
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
    Double temperature = number(request, "temperature", 0, 2);
    Double topP = number(request, "top_p", 0, 1);
    JsonNode stopNode = request.get("stop");
    List<String> stop = stopNode == null || stopNode.isNull() ? List.of() : stop(stopNode);
    Long seed = seed(request);
    // vLLM's extension, honoured by our model service: generate max_tokens whatever the model
    // says, as load tests and benchmarks need.
    Boolean ignoreEos = request.has("ignore_eos") ? bool(request, "ignore_eos", false) : null;
    ChatCall call = call(profile, messages, maxTokens, temperature, topP, stop, seed, ignoreEos);
    return new Completion(profile, stream, includeUsage, call);
  }

  /**
   * Whether a product request asks to regenerate the conversation's last answer ({@code
   * "regenerate": true}, no query) rather than to ask something new.
   */
  public boolean isRegenerate(JsonNode body) {
    ObjectNode request = object(body);
    boolean regenerate = bool(request, "regenerate", false);
    if (regenerate && request.hasNonNull("query")) {
      throw ApiException.invalid("query", "a regenerate asks the last question again: no query");
    }
    return regenerate;
  }

  /** The model of a regenerate request; the query is the conversation's last question. */
  public Query parseRegenerate(JsonNode body, String lastQuestion) {
    return new Query(profiles.resolve(text(object(body), "model", true)), lastQuestion);
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

  /** The call of a product turn: system prompt, earlier turns, then the query. */
  public ChatCall productCall(ModelProfile profile, List<HistoryEntry> history, String query) {
    List<ChatCall.Message> messages = new ArrayList<>();
    prependSystemPrompt(messages, profile);
    for (HistoryEntry entry : history) {
      messages.add(new ChatCall.Message(entry.role(), entry.content()));
    }
    messages.add(new ChatCall.Message("user", query));
    return call(profile, messages, null, null, null, List.of(), null, null);
  }

  /** One earlier turn of a conversation. */
  public record HistoryEntry(String role, String content) {}

  private static ChatCall call(
      ModelProfile profile,
      List<ChatCall.Message> messages,
      Integer maxTokens,
      Double temperature,
      Double topP,
      List<String> stop,
      Long seed,
      Boolean ignoreEos) {
    int limit = Math.max(1, profile.maxMaxTokens());
    return new ChatCall(
        ModelProfiles.upstreamModel(profile),
        messages,
        Math.min(limit, maxTokens == null ? profile.defaultMaxTokens() : maxTokens),
        temperature == null ? profile.defaultTemperature() : temperature,
        topP == null ? profile.defaultTopP() : topP,
        stop,
        seed,
        ignoreEos);
  }

  private static void prependSystemPrompt(List<ChatCall.Message> messages, ModelProfile profile) {
    if (profile.systemPrompt() != null && !profile.systemPrompt().isBlank()) {
      messages.add(0, new ChatCall.Message("system", profile.systemPrompt()));
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

  /** Any 64-bit integer, as the model service's generators take. */
  private static Long seed(ObjectNode request) {
    JsonNode value = request.get("seed");
    if (value == null || value.isNull()) {
      return null;
    }
    if (!value.isIntegralNumber() || !value.canConvertToLong()) {
      throw ApiException.invalid("seed", "seed must be a 64-bit integer");
    }
    return value.asLong();
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

  private static List<String> stop(JsonNode stop) {
    if (stop.isTextual()) {
      return List.of(stop.asText());
    }
    if (stop.isArray() && stop.size() <= 4) {
      List<String> values = new ArrayList<>();
      for (JsonNode item : stop) {
        if (!item.isTextual()) {
          throw ApiException.invalid("stop", "stop must be a string or an array of strings");
        }
        values.add(item.asText());
      }
      return values;
    }
    throw ApiException.invalid("stop", "stop must be a string or an array of up to 4 strings");
  }
}
