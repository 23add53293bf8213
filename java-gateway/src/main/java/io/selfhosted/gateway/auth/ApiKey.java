package io.selfhosted.gateway.auth;

import java.time.Instant;
import org.springframework.lang.Nullable;

/** A stored API key: everything but the key itself, of which only a hash and a prefix are kept. */
public record ApiKey(
    String id,
    String name,
    Caller.Role role,
    String prefix,
    AllowedModels models,
    KeyLimits limits,
    @Nullable Instant expiresAt,
    Instant createdAt,
    @Nullable Instant lastUsedAt,
    @Nullable Instant revokedAt) {

  /** Whether the key may authenticate at {@code now}. */
  public boolean isActive(Instant now) {
    return revokedAt == null && (expiresAt == null || expiresAt.isAfter(now));
  }

  public String status(Instant now) {
    if (revokedAt != null) {
      return "revoked";
    }
    return expiresAt != null && !expiresAt.isAfter(now) ? "expired" : "active";
  }

  public Caller caller() {
    return new Caller(id, name, role, models, limits);
  }
}
