package io.selfhosted.gateway.system;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.cfg.CoercionAction;
import com.fasterxml.jackson.databind.cfg.CoercionInputShape;
import com.fasterxml.jackson.databind.type.LogicalType;
import java.lang.reflect.Type;
import org.springframework.core.ResolvableType;
import org.springframework.http.MediaType;
import org.springframework.http.converter.json.MappingJackson2HttpMessageConverter;
import org.springframework.lang.Nullable;

/**
 * Reads the request bodies marked {@link StrictJson} with a strict copy of the application's
 * mapper; everything else (replies, upstream chunks, unmarked bodies) keeps the lenient one.
 */
public class StrictJsonConverter extends MappingJackson2HttpMessageConverter {

  public StrictJsonConverter(ObjectMapper mapper) {
    super(strict(mapper));
  }

  /**
   * A copy of {@code mapper} that refuses Jackson's lenient coercions between JSON types, as the
   * hand-written validation before it did: a client that sends {@code "max_tokens": "5"} or {@code
   * "model": 42} has a bug worth hearing about, and {@code "n": 1.5} must not become 1.
   */
  public static ObjectMapper strict(ObjectMapper mapper) {
    ObjectMapper strict = mapper.copy();
    strict.enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);
    strict.enable(DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES);
    strict.enable(DeserializationFeature.FAIL_ON_NUMBERS_FOR_ENUMS);
    strict.disable(DeserializationFeature.ACCEPT_FLOAT_AS_INT);
    for (LogicalType numberOrBoolean :
        new LogicalType[] {LogicalType.Integer, LogicalType.Float, LogicalType.Boolean}) {
      strict
          .coercionConfigFor(numberOrBoolean)
          .setCoercion(CoercionInputShape.String, CoercionAction.Fail)
          .setCoercion(CoercionInputShape.EmptyString, CoercionAction.Fail);
    }
    strict
        .coercionConfigFor(LogicalType.Integer)
        .setCoercion(CoercionInputShape.Float, CoercionAction.Fail);
    strict
        .coercionConfigFor(LogicalType.Boolean)
        .setCoercion(CoercionInputShape.Integer, CoercionAction.Fail)
        .setCoercion(CoercionInputShape.Float, CoercionAction.Fail);
    strict
        .coercionConfigFor(LogicalType.Textual)
        .setCoercion(CoercionInputShape.Integer, CoercionAction.Fail)
        .setCoercion(CoercionInputShape.Float, CoercionAction.Fail)
        .setCoercion(CoercionInputShape.Boolean, CoercionAction.Fail);
    return strict;
  }

  @Override
  public boolean canRead(Class<?> clazz, @Nullable MediaType mediaType) {
    return marked(clazz) && super.canRead(clazz, mediaType);
  }

  @Override
  public boolean canRead(
      Type type, @Nullable Class<?> contextClass, @Nullable MediaType mediaType) {
    return marked(ResolvableType.forType(type).resolve())
        && super.canRead(type, contextClass, mediaType);
  }

  @Override
  public boolean canWrite(Class<?> clazz, @Nullable MediaType mediaType) {
    return false;
  }

  @Override
  public boolean canWrite(@Nullable Type type, Class<?> clazz, @Nullable MediaType mediaType) {
    return false;
  }

  private static boolean marked(@Nullable Class<?> type) {
    return type != null && type.isAnnotationPresent(StrictJson.class);
  }
}
