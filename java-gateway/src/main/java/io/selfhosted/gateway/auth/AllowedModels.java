package io.selfhosted.gateway.auth;

import com.fasterxml.jackson.annotation.JsonValue;
import java.util.Collection;
import java.util.Collections;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import org.springframework.lang.Nullable;

/**
 * The models a key may use: every model, or exactly the named ones, which may be none. The two are
 * kept apart because an admin who empties a key's list means to block the key, not to unblock it.
 * On the wire every model is {@code null} (or an absent field) and none is {@code []}.
 *
 * @param names the client-facing model names, or null for every model
 */
public record AllowedModels(@Nullable Set<String> names) {

  /** Every model, including ones configured later. */
  public static final AllowedModels ALL = new AllowedModels(null);

  public AllowedModels {
    // Kept in the order given, so that a key's list reads back as the admin wrote it.
    names = names == null ? null : Collections.unmodifiableSet(new LinkedHashSet<>(names));
  }

  /** Exactly these models; an empty collection allows none. */
  public static AllowedModels only(Collection<String> names) {
    return new AllowedModels(new LinkedHashSet<>(names));
  }

  /** Whether every model is allowed. */
  public boolean all() {
    return names == null;
  }

  /** Whether no model at all is allowed. */
  public boolean none() {
    return names != null && names.isEmpty();
  }

  /** Whether a call to {@code model} is allowed. */
  public boolean allows(String model) {
    return names == null || names.contains(model);
  }

  /** The wire form: {@code null} for every model, else the list (possibly empty). */
  @JsonValue
  @Nullable
  public List<String> toList() {
    return names == null ? null : List.copyOf(names);
  }
}
