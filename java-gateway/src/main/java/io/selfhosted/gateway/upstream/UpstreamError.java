package io.selfhosted.gateway.upstream;

import io.selfhosted.gateway.system.ApiException;
import org.springframework.http.HttpStatus;

/**
 * Why an upstream call failed, classified once so that failover and the client's status are decided
 * from the same facts.
 */
public record UpstreamError(
    Kind kind,
    int status,
    String message,
    String type,
    String code,
    String param,
    Long retryAfterSeconds) {

  /** Failure classes; only some of them may be retried on another replica. */
  public enum Kind {
    /** No connection, connection reset, or the stream ended before [DONE]. */
    CONNECTION,
    /** The model service went silent for longer than the read timeout. */
    TIMEOUT,
    /** An HTTP error status before the stream opened. */
    HTTP,
    /** An error reported inside an open stream. */
    IN_STREAM,
    /** Every replica is ejected or none is configured. */
    NO_REPLICA
  }

  static UpstreamError connection(String message) {
    return new UpstreamError(
        Kind.CONNECTION, 0, message, "upstream_error", "upstream_unavailable", null, null);
  }

  static UpstreamError timeout() {
    return new UpstreamError(
        Kind.TIMEOUT,
        0,
        "the model service did not answer in time",
        "upstream_error",
        "upstream_timeout",
        null,
        null);
  }

  /** True when another replica may be tried, which is only allowed before the first token. */
  public boolean retryable() {
    return kind == Kind.CONNECTION || (kind == Kind.HTTP && status >= 500);
  }

  /** The status and envelope the client sees; 4xx pass through, 5xx become 502/503/504. */
  public ApiException toApiException() {
    return switch (kind) {
      case TIMEOUT -> new ApiException(HttpStatus.GATEWAY_TIMEOUT, type, code, null, message);
      case NO_REPLICA ->
          new ApiException(HttpStatus.SERVICE_UNAVAILABLE, type, code, null, message, 5L);
      case CONNECTION, IN_STREAM ->
          new ApiException(HttpStatus.BAD_GATEWAY, type, code, null, message);
      case HTTP -> {
        if (status == 503) {
          yield new ApiException(
              HttpStatus.SERVICE_UNAVAILABLE,
              type,
              code,
              param,
              message,
              retryAfterSeconds == null ? 1L : retryAfterSeconds);
        }
        if (status >= 500 || status < 400) {
          yield new ApiException(
              HttpStatus.BAD_GATEWAY,
              "upstream_error",
              "upstream_error",
              null,
              "the model service failed (HTTP " + status + ")");
        }
        HttpStatus passed = HttpStatus.resolve(status);
        yield new ApiException(
            passed == null ? HttpStatus.BAD_REQUEST : passed, type, code, param, message);
      }
    };
  }
}
