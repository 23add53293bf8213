package io.selfhosted.gateway.system;

import com.fasterxml.jackson.annotation.JsonInclude;

/** The error shape shared by every tier: {"error": {"message", "type", "param", "code"}}. */
public record ErrorEnvelope(Body error) {

  /** The inner error object; {@code param} is serialized as null when absent. */
  @JsonInclude(JsonInclude.Include.ALWAYS)
  public record Body(String message, String type, String param, String code) {}

  public static ErrorEnvelope of(String message, String type, String param, String code) {
    return new ErrorEnvelope(new Body(message, type, param, code));
  }
}
