package io.selfhosted.gateway.auth;

import io.selfhosted.gateway.system.StrictJson;
import io.swagger.v3.oas.annotations.media.Schema;
import jakarta.validation.Valid;
import jakarta.validation.constraints.Future;
import jakarta.validation.constraints.NotBlank;
import jakarta.validation.constraints.NotNull;
import jakarta.validation.constraints.Pattern;
import jakarta.validation.constraints.Size;
import java.time.Instant;
import java.util.List;
import org.springframework.lang.Nullable;

/**
 * The body of {@code POST /admin/keys}. An unknown field is refused: a misspelt {@code models} or
 * {@code limits} would otherwise make a key that may do more than the admin meant. Whether the
 * named models exist is checked by {@link KeyController}.
 */
@StrictJson
@Schema(name = "KeyRequest", description = "A new API key")
record KeyRequest(
    @NotBlank(message = KeyRequest.NAME_MESSAGE)
        @Size(max = KeyRequest.MAX_NAME, message = KeyRequest.LENGTH_MESSAGE)
        @Schema(requiredMode = Schema.RequiredMode.REQUIRED, example = "billing app", minLength = 1)
        String name,
    @Pattern(regexp = "^(user|admin)$", message = "must be \"user\" or \"admin\"")
        @Schema(
            allowableValues = {"user", "admin"},
            defaultValue = "user")
        @Nullable
        String role,
    @Schema(
            description = MODELS_DESCRIPTION,
            types = {"array", "null"})
        @Nullable
        List<@NotNull(message = KeyRequest.MODEL_MESSAGE) String> models,
    @Valid @Nullable KeyLimits limits,
    @Future(message = KeyRequest.FUTURE_MESSAGE)
        @Schema(
            description = "when the key stops working (ISO-8601); left out or null: never",
            types = {"string", "null"})
        @Nullable
        Instant expiresAt) {

  static final int MAX_NAME = 200;
  static final String NAME_MESSAGE = "must be a non-empty string";
  static final String LENGTH_MESSAGE = "must be at most {max} characters";
  static final String MODEL_MESSAGE = "must be a model name";
  static final String FUTURE_MESSAGE = "must lie in the future";
  static final String MODELS_DESCRIPTION =
      "the models the key may use: left out or null for every model (also ones added later), a"
          + " list for exactly those ([]: none)";

  /** The name as stored: without surrounding blanks. */
  String strippedName() {
    return name.strip();
  }

  /** The role; left out or null is a user. */
  Caller.Role callerRole() {
    return "admin".equals(role) ? Caller.Role.ADMIN : Caller.Role.USER;
  }

  /** Left out or {@code null}: every model; a list: exactly those, so {@code []} allows none. */
  AllowedModels allowedModels() {
    return models == null ? AllowedModels.ALL : AllowedModels.only(models);
  }

  /** The limits; left out or {@code null}: none. */
  KeyLimits keyLimits() {
    return limits == null ? KeyLimits.NONE : limits;
  }
}
