package io.selfhosted.gateway.auth;

import io.selfhosted.gateway.system.StrictJson;
import io.swagger.v3.oas.annotations.media.Schema;
import jakarta.validation.Valid;
import jakarta.validation.constraints.Future;
import jakarta.validation.constraints.NotBlank;
import jakarta.validation.constraints.NotNull;
import jakarta.validation.constraints.Size;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import org.springframework.lang.Nullable;

/**
 * The body of {@code PATCH /admin/keys/{id}}: what to change; a field left out stays as it is.
 *
 * <p>A field left out and a field sent as {@code null} mean different things ({@code "models":
 * null} gives the key every model again, {@code "expiresAt": null} removes its expiry), so every
 * component is an {@link Optional} as {@link StrictJson} reads one: {@code null} when the field is
 * left out, {@link Optional#empty()} when it is {@code null}, else the value. Read them through
 * {@link #applyTo}, which says what each means, rather than one by one.
 *
 * <p>The role cannot be changed, so {@code role} is refused like any field not listed here.
 */
@StrictJson
@Schema(
    name = "KeyUpdateRequest",
    description = "The fields of a key to change; a field left out stays as it is")
record KeyUpdateRequest(
    // The constraints inside the Optional are checked but not documented: say them here too.
    @Schema(example = "billing app", minLength = 1, maxLength = KeyRequest.MAX_NAME) @Nullable
        Optional<
                @NotBlank(message = KeyRequest.NAME_MESSAGE)
                @Size(max = KeyRequest.MAX_NAME, message = KeyRequest.LENGTH_MESSAGE) String>
            name,
    @Schema(
            description = KeyRequest.MODELS_DESCRIPTION,
            types = {"array", "null"})
        @Nullable
        Optional<List<@NotNull(message = KeyRequest.MODEL_MESSAGE) String>> models,
    @Schema(description = "the new limits, replacing the old ones as a whole; null: none") @Nullable
        Optional<@Valid KeyLimits> limits,
    @Schema(
            description = "when the key stops working (ISO-8601); null: never",
            types = {"string", "null"})
        @Nullable
        Optional<@Future(message = KeyRequest.FUTURE_MESSAGE) Instant> expiresAt) {

  /** The model names sent, to be checked; null when models is left out or null. */
  @Nullable
  List<String> namedModels() {
    return models == null ? null : models.orElse(null);
  }

  /** {@code key} with the fields sent: {@code null} means every model, no limits, no expiry. */
  ApiKey applyTo(ApiKey key) {
    return new ApiKey(
        key.id(),
        // Never empty here: a null name broke a constraint.
        name == null ? key.name() : name.orElseThrow().strip(),
        key.role(),
        key.prefix(),
        models == null ? key.models() : models.map(AllowedModels::only).orElse(AllowedModels.ALL),
        limits == null ? key.limits() : limits.orElse(KeyLimits.NONE),
        expiresAt == null ? key.expiresAt() : expiresAt.orElse(null),
        key.createdAt(),
        key.lastUsedAt(),
        key.revokedAt());
  }
}
