package io.selfhosted.gateway.auth;

import com.fasterxml.jackson.annotation.JsonInclude;
import io.swagger.v3.oas.annotations.media.Schema;
import jakarta.validation.constraints.Min;
import org.springframework.lang.Nullable;

/** A key's limits; a null field means no limit of that kind. The admin API takes positive ones. */
@JsonInclude(JsonInclude.Include.NON_NULL)
@Schema(name = "KeyLimits", description = "A key's limits; a limit left out or null is no limit")
public record KeyLimits(
    @Min(value = 1, message = KeyLimits.POSITIVE) @Nullable Integer requestsPerMinute,
    @Min(value = 1, message = KeyLimits.POSITIVE) @Nullable Integer tokensPerMinute,
    @Min(value = 1, message = KeyLimits.POSITIVE) @Nullable Integer concurrentStreams,
    @Min(value = 1, message = KeyLimits.POSITIVE) @Nullable Long tokensPerDay,
    @Min(value = 1, message = KeyLimits.POSITIVE) @Nullable Long tokensPerMonth) {

  public static final KeyLimits NONE = new KeyLimits(null, null, null, null, null);

  static final String POSITIVE = "must be a positive integer or null";
}
