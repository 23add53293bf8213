package io.selfhosted.gateway.degrade;

import com.fasterxml.jackson.databind.JsonNode;
import io.selfhosted.gateway.system.StrictJson;
import io.swagger.v3.oas.annotations.media.Schema;
import jakarta.validation.constraints.Max;
import jakarta.validation.constraints.Min;
import jakarta.validation.constraints.Size;
import org.springframework.lang.Nullable;

/**
 * The body of {@code PUT /admin/switches/{kind}}. Which fields apply depends on the switch (checked
 * by {@link SwitchController}); an unknown field is refused, since a misspelt one would silently
 * leave a switch other than the admin meant. Blank text counts as absent.
 */
@StrictJson
@Schema(name = "SwitchRequest")
record SwitchRequest(
    @Schema(description = "on or off; the contract's value: true|false stands in for it") @Nullable
        Boolean enabled,
    @Size(max = 200, message = "is longer than {max} characters")
        @Schema(description = "the model of a per-model switch (or name it as kind:model)")
        @Nullable
        String model,
    @Size(max = SwitchRequest.MAX_MESSAGE, message = "is longer than {max} characters")
        @Schema(description = "what clients are told (maintenance, model_disabled)")
        @Nullable
        String message,
    @Schema(
            description =
                "max_tokens: the cap. Without enabled (the shared contract's form): true/false, or"
                    + " the switch's setting (the cap, a route's target, a message)",
            oneOf = {Boolean.class, Integer.class, String.class},
            implementation = Object.class)
        @Nullable
        JsonNode value,
    @Size(max = 200, message = "is longer than {max} characters")
        @Schema(description = "model_route: the model that serves instead")
        @Nullable
        String target,
    @Size(max = 500, message = "is longer than {max} characters") @Nullable String reason,
    @Schema(
            format = "date-time",
            description = "when the switch turns itself off (ISO-8601); or give ttlSeconds")
        @Nullable
        String expiresAt,
    @Min(value = 1, message = "must be from 1 to 31622400")
        @Max(value = 31_622_400, message = "must be from 1 to 31622400")
        @Nullable
        Long ttlSeconds) {

  static final int MAX_MESSAGE = 2000;

  SwitchRequest {
    model = text(model);
    message = text(message);
    target = text(target);
    reason = text(reason);
    value = value == null || value.isNull() ? null : value;
  }

  /** The same request for the model the path names. */
  SwitchRequest withModel(@Nullable String pathModel) {
    return new SwitchRequest(
        enabled, pathModel, message, value, target, reason, expiresAt, ttlSeconds);
  }

  /**
   * The shared contract's form, {@code {value, expiresAt?}}, in this API's fields: {@code value} is
   * true/false, or the switch's setting (a max_tokens cap, a route's target model, a message).
   * Applies only when {@code enabled} is absent.
   */
  SwitchRequest inContractForm(SwitchKind kind) {
    if (enabled != null || value == null) {
      return this;
    }
    if (value.isBoolean()) {
      return new SwitchRequest(
          value.booleanValue(), model, message, null, target, reason, expiresAt, ttlSeconds);
    }
    if (value.isTextual() && kind == SwitchKind.MODEL_ROUTE && target == null) {
      return new SwitchRequest(
          true, model, message, null, value.asText(), reason, expiresAt, ttlSeconds);
    }
    if (value.isTextual()
        && (kind == SwitchKind.MAINTENANCE || kind == SwitchKind.MODEL_DISABLED)
        && message == null) {
      return new SwitchRequest(
          true, model, value.asText(), null, target, reason, expiresAt, ttlSeconds);
    }
    return new SwitchRequest(true, model, message, value, target, reason, expiresAt, ttlSeconds);
  }

  private static @Nullable String text(@Nullable String value) {
    return value == null || value.isBlank() ? null : value.strip();
  }
}
