package io.selfhosted.gateway.system;

import com.fasterxml.jackson.core.JsonProcessingException;
import jakarta.servlet.http.HttpServletRequest;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.http.HttpHeaders;
import org.springframework.http.HttpStatus;
import org.springframework.http.MediaType;
import org.springframework.http.ResponseEntity;
import org.springframework.http.converter.HttpMessageNotReadableException;
import org.springframework.web.HttpMediaTypeNotSupportedException;
import org.springframework.web.HttpRequestMethodNotSupportedException;
import org.springframework.web.bind.MissingRequestHeaderException;
import org.springframework.web.bind.annotation.ExceptionHandler;
import org.springframework.web.bind.annotation.RestControllerAdvice;
import org.springframework.web.method.annotation.MethodArgumentTypeMismatchException;
import org.springframework.web.servlet.resource.NoResourceFoundException;

/** Maps every failure to the shared error envelope in one place; never leaks a stack trace. */
@RestControllerAdvice
public class ErrorHandling {

  private static final Logger log = LoggerFactory.getLogger(ErrorHandling.class);

  @ExceptionHandler(ApiException.class)
  ResponseEntity<ErrorEnvelope> api(ApiException e) {
    return toResponse(e);
  }

  @ExceptionHandler(HttpMessageNotReadableException.class)
  ResponseEntity<ErrorEnvelope> unreadable(HttpMessageNotReadableException e) {
    if (causedBy(e, BodySizeFilter.BodyTooLargeException.class)) {
      return toResponse(BodySizeFilter.tooLarge());
    }
    String why =
        causedBy(e, JsonProcessingException.class)
            ? "request body is not valid JSON (or not valid UTF-8)"
            : "request body is missing or unreadable";
    return toResponse(ApiException.invalid(null, why));
  }

  @ExceptionHandler(HttpMediaTypeNotSupportedException.class)
  ResponseEntity<ErrorEnvelope> mediaType(HttpMediaTypeNotSupportedException e) {
    return toResponse(
        new ApiException(
            HttpStatus.UNSUPPORTED_MEDIA_TYPE,
            "invalid_request_error",
            "unsupported_media_type",
            null,
            "send the request body as application/json"));
  }

  @ExceptionHandler(HttpRequestMethodNotSupportedException.class)
  ResponseEntity<ErrorEnvelope> method(HttpRequestMethodNotSupportedException e) {
    return toResponse(
        new ApiException(
            HttpStatus.METHOD_NOT_ALLOWED,
            "invalid_request_error",
            "method_not_allowed",
            null,
            "method " + e.getMethod() + " is not allowed here"));
  }

  @ExceptionHandler({
    MethodArgumentTypeMismatchException.class,
    MissingRequestHeaderException.class
  })
  ResponseEntity<ErrorEnvelope> badArgument(Exception e) {
    return toResponse(ApiException.invalid(null, "invalid request parameter"));
  }

  @ExceptionHandler(NoResourceFoundException.class)
  ResponseEntity<ErrorEnvelope> noResource(NoResourceFoundException e) {
    return toResponse(ApiException.notFound("not_found", null, "no such resource"));
  }

  @ExceptionHandler(Exception.class)
  ResponseEntity<ErrorEnvelope> bug(Exception e, HttpServletRequest request) {
    log.error("unhandled error on {} {}", request.getMethod(), request.getRequestURI(), e);
    return toResponse(
        new ApiException(
            HttpStatus.INTERNAL_SERVER_ERROR,
            "server_error",
            "internal_error",
            null,
            "internal error"));
  }

  static ResponseEntity<ErrorEnvelope> toResponse(ApiException e) {
    ResponseEntity.BodyBuilder builder =
        ResponseEntity.status(e.status()).contentType(MediaType.APPLICATION_JSON);
    if (e.retryAfterSeconds() != null) {
      builder.header(HttpHeaders.RETRY_AFTER, Long.toString(e.retryAfterSeconds()));
    }
    e.headers().forEach(builder::header);
    return builder.body(e.envelope());
  }

  private static boolean causedBy(Throwable e, Class<? extends Throwable> type) {
    for (Throwable t = e; t != null; t = t.getCause()) {
      if (type.isInstance(t)) {
        return true;
      }
    }
    return false;
  }
}
