package io.selfhosted.gateway.system;

import com.fasterxml.jackson.core.JsonParseException;
import com.fasterxml.jackson.core.exc.InputCoercionException;
import com.fasterxml.jackson.core.exc.StreamConstraintsException;
import com.fasterxml.jackson.databind.JavaType;
import com.fasterxml.jackson.databind.JsonMappingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.exc.MismatchedInputException;
import com.fasterxml.jackson.databind.exc.UnrecognizedPropertyException;
import com.fasterxml.jackson.databind.exc.ValueInstantiationException;
import com.fasterxml.jackson.databind.introspect.BeanPropertyDefinition;
import java.io.CharConversionException;
import java.lang.reflect.RecordComponent;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.time.temporal.Temporal;
import java.util.Arrays;
import java.util.Collection;
import java.util.Comparator;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import org.springframework.lang.Nullable;
import org.springframework.validation.FieldError;
import org.springframework.validation.ObjectError;

/**
 * The 400 of a request body that could not be bound (malformed JSON, a value of the wrong type) or
 * broke a Bean Validation constraint, naming the field as the client wrote it: its wire path, e.g.
 * {@code messages[0].role} or {@code stream_options}, never the Java name.
 */
final class RequestBodyErrors {

  private static final Pattern SEGMENT = Pattern.compile("([^.\\[\\]]+)|\\[([^]]*)]");

  private final ObjectMapper mapper;

  RequestBodyErrors(ObjectMapper mapper) {
    this.mapper = mapper;
  }

  /** A body Jackson could not read, whether as JSON at all or into the declared type. */
  ApiException unreadable(Throwable e) {
    StreamConstraintsException limit = cause(e, StreamConstraintsException.class);
    JsonMappingException inField = cause(e, JsonMappingException.class);
    if (limit != null && inField != null && !inField.getPath().isEmpty()) {
      // Well-formed JSON past the reader's limits, inside a field: name the field (a schema of
      // thousands of levels in a tool's parameters), never echo any of it.
      String param = wirePath(inField.getPath());
      String message =
          String.valueOf(limit.getMessage()).contains("nesting depth")
              ? " is nested too deeply"
              : " is too large";
      return ApiException.invalid(param, param + message);
    }
    if (causedBy(e, JsonParseException.class)
        || causedBy(e, StreamConstraintsException.class)
        || causedBy(e, CharConversionException.class)) {
      // Also when Jackson wrapped it with the path of the field it was in: the JSON is broken.
      return ApiException.invalid(null, "request body is not valid JSON (or not valid UTF-8)");
    }
    JsonMappingException mapping = cause(e, JsonMappingException.class);
    if (mapping == null) {
      return ApiException.invalid(null, "request body is missing or unreadable");
    }
    String param = wirePath(mapping.getPath());
    if (mapping instanceof ValueInstantiationException
        && mapping.getCause() instanceof IllegalArgumentException refused) {
      // A request type may refuse a value in its constructor; its message says why.
      return ApiException.invalid(
          param.isEmpty() ? null : param,
          param.isEmpty() ? refused.getMessage() : param + " " + refused.getMessage());
    }
    if (param.isEmpty()) {
      return ApiException.invalid(null, "request body must be a JSON object");
    }
    if (mapping instanceof UnrecognizedPropertyException unknown) {
      String allowed =
          unknown.getKnownPropertyIds() == null
              ? ""
              : unknown.getKnownPropertyIds().stream()
                  .map(String::valueOf)
                  .sorted()
                  .collect(Collectors.joining(", ", "; allowed: ", ""));
      return ApiException.invalid(param, "unknown field " + param + allowed);
    }
    InputCoercionException overflow = cause(e, InputCoercionException.class);
    if (overflow != null) {
      return ApiException.invalid(param, param + " must be " + describe(overflow.getTargetType()));
    }
    if (mapping instanceof MismatchedInputException mismatch && mismatch.getTargetType() != null) {
      return ApiException.invalid(param, param + " must be " + describe(mismatch.getTargetType()));
    }
    return ApiException.invalid(param, param + " is not valid");
  }

  /**
   * The first constraint a bound body broke, in the order of the body type's fields, a missing
   * value before anything else about the same field.
   */
  ApiException invalid(
      Class<?> root, List<FieldError> fieldErrors, List<? extends ObjectError> globalErrors) {
    if (fieldErrors.isEmpty()) {
      String message = globalErrors.isEmpty() ? null : globalErrors.get(0).getDefaultMessage();
      return ApiException.invalid(null, message == null ? "request body is not valid" : message);
    }
    FieldError first = fieldErrors.stream().min(order(root)).orElseThrow();
    String param = wireName(root, first.getField());
    return ApiException.invalid(param, param + " " + first.getDefaultMessage());
  }

  /** Spring's Java property path ({@code messages[0].role}) as the JSON names it. */
  String wireName(Class<?> root, String field) {
    JavaType type = mapper.constructType(root);
    StringBuilder wire = new StringBuilder();
    Matcher segment = SEGMENT.matcher(field);
    while (segment.find()) {
      if (segment.group(2) != null) {
        wire.append('[').append(segment.group(2)).append(']');
        type = type == null ? null : type.getContentType();
        continue;
      }
      BeanPropertyDefinition property = property(type, segment.group(1));
      if (!wire.isEmpty()) {
        wire.append('.');
      }
      wire.append(property == null ? segment.group(1) : property.getName());
      type = property == null ? null : property.getPrimaryType();
      if (type != null && type.isReferenceType()) {
        // An Optional field: the path goes on inside the value it holds.
        type = type.getReferencedType();
      }
    }
    return wire.toString();
  }

  private @Nullable BeanPropertyDefinition property(@Nullable JavaType type, String javaName) {
    if (type == null || type.isContainerType() || type.isJavaLangObject()) {
      return null;
    }
    return mapper.getDeserializationConfig().introspect(type).findProperties().stream()
        .filter(p -> p.getInternalName().equals(javaName))
        .findFirst()
        .orElse(null);
  }

  private static Comparator<FieldError> order(Class<?> root) {
    List<String> fields =
        root.isRecord()
            ? Arrays.stream(root.getRecordComponents()).map(RecordComponent::getName).toList()
            : List.of();
    return Comparator.<FieldError>comparingInt(
            e -> {
              int at = fields.indexOf(e.getField().split("[.\\[]", 2)[0]);
              return at < 0 ? Integer.MAX_VALUE : at;
            })
        .thenComparing(FieldError::getField)
        .thenComparingInt(e -> "NotNull".equals(e.getCode()) ? 0 : 1);
  }

  private static String wirePath(List<JsonMappingException.Reference> path) {
    StringBuilder wire = new StringBuilder();
    for (JsonMappingException.Reference reference : path) {
      if (reference.getFieldName() != null) {
        if (!wire.isEmpty()) {
          wire.append('.');
        }
        wire.append(reference.getFieldName());
      } else if (reference.getIndex() >= 0) {
        wire.append('[').append(reference.getIndex()).append(']');
      }
    }
    return wire.toString();
  }

  /** The JSON a Java type takes, as a client would put it. */
  private String describe(@Nullable Class<?> type) {
    if (type == null) {
      return "a valid value";
    }
    if (type == String.class || type == Character.class || type == char.class) {
      return "a string";
    }
    if (type == Boolean.class || type == boolean.class) {
      return "a boolean";
    }
    if (type == Integer.class || type == int.class) {
      return "a 32-bit integer";
    }
    if (type == Long.class || type == long.class) {
      return "a 64-bit integer";
    }
    if (type == Short.class
        || type == short.class
        || type == Byte.class
        || type == byte.class
        || type == BigInteger.class) {
      return "an integer";
    }
    if (Number.class.isAssignableFrom(type)
        || type == double.class
        || type == float.class
        || type == BigDecimal.class) {
      return "a number";
    }
    if (type.isArray() || Collection.class.isAssignableFrom(type)) {
      return "an array";
    }
    if (type.isEnum()) {
      return Arrays.stream(type.getEnumConstants())
          .map(constant -> mapper.convertValue(constant, String.class))
          .collect(Collectors.joining(", ", "one of ", ""));
    }
    if (Temporal.class.isAssignableFrom(type)) {
      return "an ISO-8601 date-time string";
    }
    return "an object";
  }

  private static boolean causedBy(Throwable e, Class<? extends Throwable> type) {
    return cause(e, type) != null;
  }

  private static <T extends Throwable> @Nullable T cause(Throwable e, Class<T> type) {
    for (Throwable t = e; t != null; t = t.getCause()) {
      if (type.isInstance(t)) {
        return type.cast(t);
      }
    }
    return null;
  }
}
