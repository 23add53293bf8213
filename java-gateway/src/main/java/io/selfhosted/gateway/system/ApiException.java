package io.selfhosted.gateway.system;

import java.util.LinkedHashMap;
import java.util.Map;
import org.springframework.http.HttpStatus;

/** A failure that reaches the client as the shared error envelope with the given status. */
public class ApiException extends RuntimeException {

  private final HttpStatus status;
  private final String type;
  private final String code;
  private final String param;
  private final Long retryAfterSeconds;
  private final Map<String, String> headers = new LinkedHashMap<>();

  public ApiException(HttpStatus status, String type, String code, String param, String message) {
    this(status, type, code, param, message, null);
  }

  public ApiException(
      HttpStatus status,
      String type,
      String code,
      String param,
      String message,
      Long retryAfterSeconds) {
    super(message);
    this.status = status;
    this.type = type;
    this.code = code;
    this.param = param;
    this.retryAfterSeconds = retryAfterSeconds;
  }

  public static ApiException invalid(String param, String message) {
    return new ApiException(
        HttpStatus.BAD_REQUEST, "invalid_request_error", "invalid_request", param, message);
  }

  public static ApiException notFound(String code, String param, String message) {
    return new ApiException(HttpStatus.NOT_FOUND, "not_found_error", code, param, message);
  }

  public HttpStatus status() {
    return status;
  }

  public String type() {
    return type;
  }

  public String code() {
    return code;
  }

  public String param() {
    return param;
  }

  public Long retryAfterSeconds() {
    return retryAfterSeconds;
  }

  /** Extra response headers (rate-limit state) sent with the error. */
  public Map<String, String> headers() {
    return headers;
  }

  public ApiException withHeaders(Map<String, String> values) {
    headers.putAll(values);
    return this;
  }

  public ErrorEnvelope envelope() {
    return ErrorEnvelope.of(getMessage(), type, param, code);
  }
}
