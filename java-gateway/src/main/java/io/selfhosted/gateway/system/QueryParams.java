package io.selfhosted.gateway.system;

import java.time.Instant;
import java.time.format.DateTimeParseException;
import org.springframework.lang.Nullable;

/** Parses query parameters with errors in the shared envelope, naming the parameter. */
public final class QueryParams {

  private QueryParams() {}

  /** An ISO-8601 instant such as 2026-11-26T00:00:00Z, or null when absent. */
  public static @Nullable Instant instant(String name, @Nullable String value) {
    if (value == null || value.isBlank()) {
      return null;
    }
    try {
      return Instant.parse(value.trim());
    } catch (DateTimeParseException e) {
      throw ApiException.invalid(
          name, name + " must be an ISO-8601 instant such as 2026-11-26T00:00:00Z");
    }
  }

  /** An integer within bounds, or the fallback when absent. */
  public static int integer(String name, @Nullable String value, int fallback, int min, int max) {
    if (value == null || value.isBlank()) {
      return fallback;
    }
    try {
      int parsed = Integer.parseInt(value.trim());
      if (parsed >= min && parsed <= max) {
        return parsed;
      }
    } catch (NumberFormatException ignored) {
      // falls through to the error
    }
    throw ApiException.invalid(name, name + " must be an integer from " + min + " to " + max);
  }
}
