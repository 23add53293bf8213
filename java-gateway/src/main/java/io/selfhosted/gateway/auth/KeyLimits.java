package io.selfhosted.gateway.auth;

import com.fasterxml.jackson.annotation.JsonInclude;

/** A key's limits; a null field means no limit of that kind. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record KeyLimits(
    Integer requestsPerMinute,
    Integer tokensPerMinute,
    Integer concurrentStreams,
    Long tokensPerDay,
    Long tokensPerMonth) {

  public static final KeyLimits NONE = new KeyLimits(null, null, null, null, null);
}
