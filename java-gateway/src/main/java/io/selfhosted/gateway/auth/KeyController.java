package io.selfhosted.gateway.auth;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonUnwrapped;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.selfhosted.gateway.audit.AuditLog;
import io.selfhosted.gateway.models.ModelProfiles;
import io.selfhosted.gateway.system.ApiException;
import io.swagger.v3.oas.annotations.Operation;
import io.swagger.v3.oas.annotations.tags.Tag;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.springframework.http.HttpStatus;
import org.springframework.http.ResponseEntity;
import org.springframework.security.core.annotation.AuthenticationPrincipal;
import org.springframework.web.bind.annotation.DeleteMapping;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PatchMapping;
import org.springframework.web.bind.annotation.PathVariable;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.RequestBody;
import org.springframework.web.bind.annotation.RestController;

/** API key management (admin role): create, list, read, update, revoke; every change audited. */
@RestController
@Tag(name = "admin")
public class KeyController {

  private final ApiKeyService keys;
  private final ModelProfiles profiles;
  private final AuditLog audit;

  public KeyController(ApiKeyService keys, ModelProfiles profiles, AuditLog audit) {
    this.keys = keys;
    this.profiles = profiles;
    this.audit = audit;
  }

  /**
   * A key as the admin API shows it: never the key itself, only its visible prefix. {@code models}
   * is {@code null} for every model and {@code []} for none.
   */
  @JsonInclude(JsonInclude.Include.ALWAYS)
  public record KeyView(
      String id,
      String name,
      String role,
      String prefix,
      List<String> models,
      KeyLimits limits,
      Instant expiresAt,
      Instant createdAt,
      Instant lastUsedAt,
      Instant revokedAt,
      String status) {
    static KeyView of(ApiKey key) {
      return new KeyView(
          key.id(),
          key.name(),
          key.role().wireName(),
          key.prefix(),
          key.models().toList(),
          key.limits(),
          key.expiresAt(),
          key.createdAt(),
          key.lastUsedAt(),
          key.revokedAt(),
          key.status(Instant.now()));
    }
  }

  /** A new key: its view plus the key, shown this once. */
  public record CreatedKey(@JsonUnwrapped KeyView view, String key) {}

  @PostMapping("/admin/keys")
  @Operation(
      summary = "Create an API key; the key is in this reply only",
      description = "models: absent or null for every model, a list for exactly those ([]: none)")
  public ResponseEntity<CreatedKey> createKey(
      @AuthenticationPrincipal Caller admin, @RequestBody JsonNode body) {
    ObjectNode request = object(body);
    String name = name(request.get("name"));
    Caller.Role role = role(request.get("role"));
    AllowedModels models = models(request.get("models"));
    KeyLimits limits = limits(request.get("limits"));
    Instant expiresAt = expiry(request.get("expiresAt"));
    ApiKeyService.Issued issued = keys.create(name, role, models, limits, expiresAt);
    KeyView view = KeyView.of(issued.key());
    audit.record(admin, "key.create", issued.key().id(), null, view);
    return ResponseEntity.status(HttpStatus.CREATED).body(new CreatedKey(view, issued.secret()));
  }

  @GetMapping("/admin/keys")
  @Operation(summary = "Every key, revoked ones included")
  public Map<String, List<KeyView>> listKeys() {
    return Map.of("data", keys.list().stream().map(KeyView::of).toList());
  }

  @GetMapping("/admin/keys/{id}")
  @Operation(summary = "One key")
  public KeyView getKey(@PathVariable String id) {
    return KeyView.of(find(id));
  }

  @PatchMapping("/admin/keys/{id}")
  @Operation(
      summary = "Change a key's name, models, limits or expiry (fields left out stay)",
      description = "models: null for every model, a list for exactly those ([]: none)")
  public KeyView updateKey(
      @AuthenticationPrincipal Caller admin, @PathVariable String id, @RequestBody JsonNode body) {
    ObjectNode request = object(body);
    ApiKey before = find(id);
    if (before.revokedAt() != null) {
      throw new ApiException(
          HttpStatus.CONFLICT,
          "invalid_request_error",
          "key_revoked",
          null,
          "a revoked key cannot be changed");
    }
    for (var fields = request.fieldNames(); fields.hasNext(); ) {
      String field = fields.next();
      if (!Set.of("name", "models", "limits", "expiresAt").contains(field)) {
        throw ApiException.invalid(
            field, field + " cannot be changed (name, models, limits and expiresAt can)");
      }
    }
    ApiKey after =
        new ApiKey(
            before.id(),
            request.has("name") ? name(request.get("name")) : before.name(),
            before.role(),
            before.prefix(),
            request.has("models") ? models(request.get("models")) : before.models(),
            request.has("limits") ? limits(request.get("limits")) : before.limits(),
            request.has("expiresAt") ? expiry(request.get("expiresAt")) : before.expiresAt(),
            before.createdAt(),
            before.lastUsedAt(),
            before.revokedAt());
    keys.update(after);
    KeyView view = KeyView.of(after);
    audit.record(admin, "key.update", id, KeyView.of(before), view);
    return view;
  }

  @DeleteMapping("/admin/keys/{id}")
  @Operation(summary = "Revoke a key: it and its browser sessions stop working at once")
  public KeyView revokeKey(@AuthenticationPrincipal Caller admin, @PathVariable String id) {
    ApiKey before = find(id);
    keys.revoke(id);
    KeyView view = KeyView.of(find(id));
    audit.record(admin, "key.revoke", id, KeyView.of(before), view);
    return view;
  }

  private ApiKey find(String id) {
    return keys.find(id)
        .orElseThrow(() -> ApiException.notFound("key_not_found", "id", "no such API key"));
  }

  private static ObjectNode object(JsonNode body) {
    if (body == null || !body.isObject()) {
      throw ApiException.invalid(null, "request body must be a JSON object");
    }
    return (ObjectNode) body;
  }

  private static String name(JsonNode value) {
    if (value == null || !value.isTextual() || value.asText().isBlank()) {
      throw ApiException.invalid("name", "name must be a non-empty string");
    }
    if (value.asText().length() > 200) {
      throw ApiException.invalid("name", "name must be at most 200 characters");
    }
    return value.asText().strip();
  }

  private static Caller.Role role(JsonNode value) {
    if (value == null || value.isNull()) {
      return Caller.Role.USER;
    }
    if (value.isTextual()) {
      switch (value.asText()) {
        case "user":
          return Caller.Role.USER;
        case "admin":
          return Caller.Role.ADMIN;
        default:
          break;
      }
    }
    throw ApiException.invalid("role", "role must be \"user\" or \"admin\"");
  }

  /** Absent or {@code null}: every model; a list: exactly those, so {@code []} allows none. */
  private AllowedModels models(JsonNode value) {
    if (value == null || value.isNull()) {
      return AllowedModels.ALL;
    }
    if (!value.isArray()) {
      throw ApiException.invalid(
          "models", "models must be an array of model names, or null for every model");
    }
    List<String> models = new ArrayList<>();
    for (JsonNode item : value) {
      if (!item.isTextual()) {
        throw ApiException.invalid("models", "models must be an array of model names");
      }
      profiles.resolve(item.asText()); // 404 names the unknown model
      models.add(item.asText());
    }
    return AllowedModels.only(models);
  }

  private static KeyLimits limits(JsonNode value) {
    if (value == null || value.isNull()) {
      return KeyLimits.NONE;
    }
    if (!value.isObject()) {
      throw ApiException.invalid("limits", "limits must be an object");
    }
    Set<String> known =
        Set.of(
            "requestsPerMinute",
            "tokensPerMinute",
            "concurrentStreams",
            "tokensPerDay",
            "tokensPerMonth");
    for (var fields = value.fieldNames(); fields.hasNext(); ) {
      String field = fields.next();
      if (!known.contains(field)) {
        throw ApiException.invalid("limits." + field, "unknown limit " + field);
      }
    }
    return new KeyLimits(
        positiveInt(value, "requestsPerMinute"),
        positiveInt(value, "tokensPerMinute"),
        positiveInt(value, "concurrentStreams"),
        positiveLong(value, "tokensPerDay"),
        positiveLong(value, "tokensPerMonth"));
  }

  private static Integer positiveInt(JsonNode limits, String field) {
    Long value = positiveLong(limits, field);
    if (value != null && value > Integer.MAX_VALUE) {
      throw ApiException.invalid(
          "limits." + field, field + " must be at most " + Integer.MAX_VALUE);
    }
    return value == null ? null : value.intValue();
  }

  private static Long positiveLong(JsonNode limits, String field) {
    JsonNode value = limits.get(field);
    if (value == null || value.isNull()) {
      return null;
    }
    if (!value.isIntegralNumber() || !value.canConvertToLong() || value.asLong() < 1) {
      throw ApiException.invalid("limits." + field, field + " must be a positive integer or null");
    }
    return value.asLong();
  }

  private static Instant expiry(JsonNode value) {
    if (value == null || value.isNull()) {
      return null;
    }
    if (value.isTextual()) {
      try {
        Instant at = Instant.parse(value.asText());
        if (at.isAfter(Instant.now())) {
          return at;
        }
        throw ApiException.invalid("expiresAt", "expiresAt must lie in the future");
      } catch (DateTimeParseException e) {
        // falls through to the error
      }
    }
    throw ApiException.invalid(
        "expiresAt", "expiresAt must be an ISO-8601 instant such as 2027-01-01T00:00:00Z");
  }
}
