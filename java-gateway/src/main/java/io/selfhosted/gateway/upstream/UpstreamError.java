package io.selfhosted.gateway.upstream;

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
    NO_REPLICA,
    /** The model's circuit breaker is open: nothing was sent. */
    MODEL_UNAVAILABLE
  }

  static UpstreamError modelUnavailable(String model, long retryAfterSeconds) {
    return new UpstreamError(
        Kind.MODEL_UNAVAILABLE,
        0,
        "the model '" + model + "' is unavailable right now",
        "upstream_error",
        "model_unavailable",
        null,
        Math.max(1, retryAfterSeconds));
  }

  /**
   * True when the upstream could not serve the call at all (down, failing, breaker open), so that a
   * fallback may answer instead; false for the caller's own mistakes and for a busy service (503),
   * whose client is better served by its Retry-After.
   */
  public boolean unavailable() {
    return switch (kind) {
      case HTTP -> status >= 500 && status != 503;
      case IN_STREAM -> !"invalid_request_error".equals(type);
      default -> true;
    };
  }

  static UpstreamError noReplica() {
    return new UpstreamError(
        Kind.NO_REPLICA,
        0,
        "no model service is available",
        "upstream_error",
        "no_upstream",
        null,
        5L);
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

  static UpstreamError stalled(java.time.Duration limit) {
    return new UpstreamError(
        Kind.TIMEOUT,
        0,
        "the model service sent nothing for " + limit.toMillis() + " ms mid-answer",
        "upstream_error",
        "upstream_stalled",
        null,
        null);
  }

  /** True when another replica may be tried, which is only allowed before the first token. */
  public boolean retryable() {
    return kind == Kind.CONNECTION || (kind == Kind.HTTP && status >= 500);
  }
}
