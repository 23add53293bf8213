package io.selfhosted.gateway.pipeline;

import io.selfhosted.gateway.system.ApiException;
import io.selfhosted.gateway.upstream.UpstreamError;
import org.springframework.http.HttpStatus;

/** What a client sees of an upstream failure: 4xx pass through, 5xx become 502/503/504. */
public final class UpstreamFailures {

  private UpstreamFailures() {}

  public static ApiException toApiException(UpstreamError error) {
    return switch (error.kind()) {
      case TIMEOUT ->
          new ApiException(
              HttpStatus.GATEWAY_TIMEOUT, error.type(), error.code(), null, error.message());
      case NO_REPLICA, MODEL_UNAVAILABLE ->
          new ApiException(
              HttpStatus.SERVICE_UNAVAILABLE,
              error.type(),
              error.code(),
              null,
              error.message(),
              error.retryAfterSeconds());
      case CONNECTION, IN_STREAM ->
          new ApiException(
              HttpStatus.BAD_GATEWAY, error.type(), error.code(), null, error.message());
      case HTTP -> fromStatus(error);
    };
  }

  private static ApiException fromStatus(UpstreamError error) {
    int status = error.status();
    if (status == 503) {
      return new ApiException(
          HttpStatus.SERVICE_UNAVAILABLE,
          error.type(),
          error.code(),
          error.param(),
          error.message(),
          error.retryAfterSeconds() == null ? 1L : error.retryAfterSeconds());
    }
    if (status >= 500 || status < 400) {
      return new ApiException(
          HttpStatus.BAD_GATEWAY,
          "upstream_error",
          "upstream_error",
          null,
          "the model service failed (HTTP " + status + ")");
    }
    HttpStatus passed = HttpStatus.resolve(status);
    return new ApiException(
        passed == null ? HttpStatus.BAD_REQUEST : passed,
        error.type(),
        error.code(),
        error.param(),
        error.message());
  }
}
