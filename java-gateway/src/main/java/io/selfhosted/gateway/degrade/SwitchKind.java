package io.selfhosted.gateway.degrade;

import com.fasterxml.jackson.annotation.JsonValue;
import java.util.Arrays;
import java.util.Optional;

/** The degradation switches an operator can flip. */
public enum SwitchKind {
  /** Every chat request gets the maintenance message as a normal reply. */
  MAINTENANCE(Scope.GLOBAL),
  /** Streamed requests are served from one whole-reply upstream call, delivered at once. */
  STREAMING_OFF(Scope.GLOBAL),
  /** No new generations; history stays readable. */
  READ_ONLY(Scope.GLOBAL),
  /** At most {@code value} new tokens per reply, for every model or for one. */
  MAX_TOKENS(Scope.EITHER),
  /** Requests for {@code model} are served by {@code target}. */
  MODEL_ROUTE(Scope.MODEL),
  /** Requests for {@code model} are refused. */
  MODEL_DISABLED(Scope.MODEL);

  /** Whether a switch applies to every model, to one, or may do either. */
  public enum Scope {
    GLOBAL,
    MODEL,
    EITHER
  }

  private final Scope scope;

  SwitchKind(Scope scope) {
    this.scope = scope;
  }

  public Scope scope() {
    return scope;
  }

  @JsonValue
  public String wireName() {
    return name().toLowerCase();
  }

  public static Optional<SwitchKind> fromWire(String name) {
    return Arrays.stream(values()).filter(k -> k.wireName().equals(name)).findFirst();
  }
}
