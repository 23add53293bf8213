package io.selfhosted.gateway.system;

import com.fasterxml.jackson.databind.ObjectMapper;
import jakarta.servlet.http.HttpServletRequest;
import java.util.Comparator;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.core.MethodParameter;
import org.springframework.http.HttpHeaders;
import org.springframework.http.HttpStatus;
import org.springframework.http.MediaType;
import org.springframework.http.ResponseEntity;
import org.springframework.http.converter.HttpMessageNotReadableException;
import org.springframework.validation.method.ParameterErrors;
import org.springframework.validation.method.ParameterValidationResult;
import org.springframework.web.HttpMediaTypeNotSupportedException;
import org.springframework.web.HttpRequestMethodNotSupportedException;
import org.springframework.web.bind.MethodArgumentNotValidException;
import org.springframework.web.bind.MissingRequestHeaderException;
import org.springframework.web.bind.annotation.ExceptionHandler;
import org.springframework.web.bind.annotation.PathVariable;
import org.springframework.web.bind.annotation.RequestHeader;
import org.springframework.web.bind.annotation.RequestParam;
import org.springframework.web.bind.annotation.RestControllerAdvice;
import org.springframework.web.method.annotation.HandlerMethodValidationException;
import org.springframework.web.method.annotation.MethodArgumentTypeMismatchException;
import org.springframework.web.servlet.resource.NoResourceFoundException;

/** Maps every failure to the shared error envelope in one place; never leaks a stack trace. */
@RestControllerAdvice
public class ErrorHandling {

  private static final Logger log = LoggerFactory.getLogger(ErrorHandling.class);

  private final RequestBodyErrors bodies;

  public ErrorHandling(ObjectMapper mapper) {
    this.bodies = new RequestBodyErrors(mapper);
  }

  @ExceptionHandler(ApiException.class)
  ResponseEntity<ErrorEnvelope> api(ApiException e) {
    return toResponse(e);
  }

  /** Malformed JSON, or a value Jackson could not bind: the field's wire path in {@code param}. */
  @ExceptionHandler(HttpMessageNotReadableException.class)
  ResponseEntity<ErrorEnvelope> unreadable(HttpMessageNotReadableException e) {
    if (causedBy(e, BodySizeFilter.BodyTooLargeException.class)) {
      return toResponse(BodySizeFilter.tooLarge());
    }
    return toResponse(bodies.unreadable(e));
  }

  /** A {@code @Valid @RequestBody} that broke a constraint. */
  @ExceptionHandler(MethodArgumentNotValidException.class)
  ResponseEntity<ErrorEnvelope> invalidBody(MethodArgumentNotValidException e) {
    var result = e.getBindingResult();
    Class<?> root =
        result.getTarget() == null
            ? e.getParameter().getParameterType()
            : result.getTarget().getClass();
    return toResponse(bodies.invalid(root, result.getFieldErrors(), result.getGlobalErrors()));
  }

  /**
   * Constraints checked by method validation, which Spring uses instead of the above once a handler
   * also constrains a plain parameter (e.g. {@code @Max} on a {@code @RequestParam}).
   */
  @ExceptionHandler(HandlerMethodValidationException.class)
  ResponseEntity<ErrorEnvelope> invalidArguments(HandlerMethodValidationException e) {
    ParameterValidationResult first =
        e.getParameterValidationResults().stream()
            .min(Comparator.comparingInt(r -> r.getMethodParameter().getParameterIndex()))
            .orElse(null);
    if (first == null) {
      return toResponse(ApiException.invalid(null, "invalid request"));
    }
    if (first instanceof ParameterErrors errors) {
      Class<?> root =
          errors.getArgument() == null
              ? errors.getMethodParameter().getParameterType()
              : errors.getArgument().getClass();
      return toResponse(bodies.invalid(root, errors.getFieldErrors(), errors.getGlobalErrors()));
    }
    String param = parameterName(first.getMethodParameter());
    String message =
        first.getResolvableErrors().isEmpty()
            ? "is not valid"
            : first.getResolvableErrors().get(0).getDefaultMessage();
    return toResponse(ApiException.invalid(param, param + " " + message));
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

  /** A parameter as the request names it: the query parameter, path variable or header. */
  private static String parameterName(MethodParameter parameter) {
    RequestParam query = parameter.getParameterAnnotation(RequestParam.class);
    PathVariable path = parameter.getParameterAnnotation(PathVariable.class);
    RequestHeader header = parameter.getParameterAnnotation(RequestHeader.class);
    String named =
        query != null
            ? query.name()
            : path != null ? path.name() : header != null ? header.name() : "";
    return named.isEmpty() ? String.valueOf(parameter.getParameterName()) : named;
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
