package io.selfhosted.gateway.auth;

import java.util.Set;

/**
 * Who is calling: the API key (or the session opened with it) that authenticated the request.
 *
 * @param models the client-facing models this caller may use; empty means every model
 */
public record Caller(String keyId, String name, Role role, Set<String> models, KeyLimits limits) {

  public Caller {
    models = models == null ? Set.of() : Set.copyOf(models);
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

  public boolean mayUse(String model) {
    return models.isEmpty() || models.contains(model);
  }
}
