package io.selfhosted.gateway.auth;

import com.fasterxml.jackson.annotation.JsonIgnore;
import com.fasterxml.jackson.annotation.JsonInclude;
import io.swagger.v3.oas.annotations.media.Schema;
import jakarta.validation.constraints.DecimalMax;
import jakarta.validation.constraints.DecimalMin;
import jakarta.validation.constraints.Min;
import org.springframework.lang.Nullable;

/**
 * A key's limits; a null field means no limit of that kind. The admin API takes positive ones.
 *
 * @param weight the key's share when a model is full, against the other keys waiting for it (a key
 *     of weight 2 is served twice the tokens of a key of weight 1); null means 1
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
@Schema(name = "KeyLimits", description = "A key's limits; a limit left out or null is no limit")
public record KeyLimits(
    @Min(value = 1, message = KeyLimits.POSITIVE) @Nullable Integer requestsPerMinute,
    @Min(value = 1, message = KeyLimits.POSITIVE) @Nullable Integer tokensPerMinute,
    @Min(value = 1, message = KeyLimits.POSITIVE) @Nullable Integer concurrentStreams,
    @Min(value = 1, message = KeyLimits.POSITIVE) @Nullable Long tokensPerDay,
    @Min(value = 1, message = KeyLimits.POSITIVE) @Nullable Long tokensPerMonth,
    @DecimalMin(value = "0", inclusive = false, message = KeyLimits.WEIGHT)
        @DecimalMax(value = KeyLimits.MAX_WEIGHT, message = KeyLimits.WEIGHT)
        @Schema(
            description =
                "the key's share when a model is full, against the other keys waiting for it;"
                    + " left out or null: 1",
            exclusiveMinimum = true,
            minimum = "0",
            maximum = KeyLimits.MAX_WEIGHT,
            defaultValue = "1")
        @Nullable
        Double weight) {

  public static final KeyLimits NONE = new KeyLimits(null, null, null, null, null, null);

  static final String POSITIVE = "must be a positive integer or null";
  static final String MAX_WEIGHT = "1000";
  static final String WEIGHT = "must be a number over 0 and at most " + MAX_WEIGHT + ", or null";

  /** Limits without a weight of their own (weight 1). */
  public KeyLimits(
      @Nullable Integer requestsPerMinute,
      @Nullable Integer tokensPerMinute,
      @Nullable Integer concurrentStreams,
      @Nullable Long tokensPerDay,
      @Nullable Long tokensPerMonth) {
    this(requestsPerMinute, tokensPerMinute, concurrentStreams, tokensPerDay, tokensPerMonth, null);
  }

  /** The weight fair admission uses: the one set, else 1. */
  @JsonIgnore
  public double fairShareWeight() {
    return weight == null ? 1.0 : weight;
  }
}
