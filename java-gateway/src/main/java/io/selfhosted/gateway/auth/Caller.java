package io.selfhosted.gateway.auth;

import java.util.Objects;

/**
 * Who is calling: the API key (or the session opened with it) that authenticated the request.
 *
 * @param models the client-facing models this caller may use (every one, some, or none)
 */
public record Caller(String keyId, String name, Role role, AllowedModels models, KeyLimits limits) {

  public Caller {
    // No default: a missing value silently meaning "every model" is the trap AllowedModels closes.
    Objects.requireNonNull(models, "models");
    limits = limits == null ? KeyLimits.NONE : limits;
  }

  /** A key's role; admins may also use the admin API. */
  public enum Role {
    USER,
    ADMIN;

    public String wireName() {
      return name().toLowerCase();
    }
  }

  /** Whether this caller may call {@code model}. */
  public boolean mayUse(String model) {
    return models.allows(model);
  }
}
