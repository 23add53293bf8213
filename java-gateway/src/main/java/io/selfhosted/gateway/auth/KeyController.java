package io.selfhosted.gateway.auth;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonUnwrapped;
import io.selfhosted.gateway.audit.AuditLog;
import io.selfhosted.gateway.models.ModelProfiles;
import io.selfhosted.gateway.system.ApiException;
import io.swagger.v3.oas.annotations.Operation;
import io.swagger.v3.oas.annotations.tags.Tag;
import jakarta.validation.Valid;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import org.springframework.http.HttpStatus;
import org.springframework.http.ResponseEntity;
import org.springframework.lang.Nullable;
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
      @AuthenticationPrincipal Caller admin, @Valid @RequestBody KeyRequest request) {
    requireKnown(request.models());
    ApiKeyService.Issued issued =
        keys.create(
            request.strippedName(),
            request.callerRole(),
            request.allowedModels(),
            request.keyLimits(),
            request.expiresAt());
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
      description =
          "models: null for every model, a list for exactly those ([]: none); limits: replaced as"
              + " a whole, null for none; expiresAt: null for no expiry")
  public KeyView updateKey(
      @AuthenticationPrincipal Caller admin,
      @PathVariable String id,
      @Valid @RequestBody KeyUpdateRequest request) {
    ApiKey before = find(id);
    if (before.revokedAt() != null) {
      throw new ApiException(
          HttpStatus.CONFLICT,
          "invalid_request_error",
          "key_revoked",
          null,
          "a revoked key cannot be changed");
    }
    requireKnown(request.namedModels());
    ApiKey after = request.applyTo(before);
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

  /** Refuses a model that is not configured, with a 404 that names it. */
  private void requireKnown(@Nullable List<String> models) {
    if (models != null) {
      models.forEach(profiles::resolve);
    }
  }
}
