package io.selfhosted.gateway.openai;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.selfhosted.gateway.models.ChatCalls;
import io.selfhosted.gateway.models.ModelProfiles;
import io.selfhosted.gateway.models.ModelProperties.ModelProfile;
import io.selfhosted.gateway.system.ApiException;
import io.selfhosted.gateway.upstream.ChatCall;
import java.util.ArrayList;
import java.util.List;
import org.springframework.stereotype.Component;

/**
 * Validates product requests field by field (so a wrong type names its field) and builds their
 * upstream call. Nothing invalid reaches the model service.
 */
@Component
public class ChatRequests {

  static final int MAX_QUERY_CHARS = 32_000;

  private final ModelProfiles profiles;

  public ChatRequests(ModelProfiles profiles) {
    this.profiles = profiles;
  }

  /** A validated product request: a model and the user's query. */
  public record Query(ModelProfile profile, String query) {}

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
    for (HistoryEntry entry : history) {
      messages.add(new ChatCall.Message(entry.role(), entry.content()));
    }
    messages.add(new ChatCall.Message("user", query));
    return ChatCalls.of(profile, messages, ChatCalls.Sampling.DEFAULTS);
  }

  /** One earlier turn of a conversation. */
  public record HistoryEntry(String role, String content) {}

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
}
