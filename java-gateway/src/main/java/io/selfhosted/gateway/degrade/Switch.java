package io.selfhosted.gateway.degrade;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;
import java.time.Instant;
import org.springframework.lang.Nullable;

/**
 * One switch as stored and as the admin API shows it.
 *
 * @param model the client-facing model of a per-model switch; null for a global one
 * @param message the text clients get (maintenance, disabled model); null for the default
 * @param value the max_tokens cap
 * @param target the model that serves a routed one
 * @param expiresAt when the switch turns itself off; null for never
 */
@JsonInclude(JsonInclude.Include.ALWAYS)
public record Switch(
    SwitchKind kind,
    @Nullable String model,
    boolean enabled,
    @Nullable String message,
    @Nullable Integer value,
    @Nullable String target,
    @Nullable String reason,
    @Nullable Instant expiresAt,
    @Nullable String updatedBy,
    @Nullable Instant updatedAt) {

  /** A switch that was never set: off. */
  static Switch off(SwitchKind kind, @Nullable String model) {
    return new Switch(kind, model, false, null, null, null, null, null, null, null);
  }

  /** On, and not expired at {@code now}. */
  public boolean activeAt(Instant now) {
    return enabled && (expiresAt == null || expiresAt.isAfter(now));
  }

  @JsonProperty("active")
  boolean active() {
    return activeAt(Instant.now());
  }

  /** The key it is stored and cached under. */
  String id() {
    return model == null ? kind.wireName() : kind.wireName() + ":" + model;
  }
}
