package io.selfhosted.gateway.system;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.DeserializationContext;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.cfg.CoercionAction;
import com.fasterxml.jackson.databind.cfg.CoercionInputShape;
import com.fasterxml.jackson.databind.deser.std.StdScalarDeserializer;
import com.fasterxml.jackson.databind.module.SimpleModule;
import com.fasterxml.jackson.databind.type.LogicalType;
import com.fasterxml.jackson.datatype.jdk8.Jdk8Deserializers;
import java.io.IOException;
import java.lang.reflect.Type;
import java.time.Instant;
import java.time.format.DateTimeParseException;
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
    strict.registerModule(new StrictTypes());
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

  /**
   * What the strict mapper reads differently from the application's: an {@link java.util.Optional}
   * component is null when its field is left out and empty when the field is {@code null} (the
   * application's mapper makes both empty, so a PATCH body could not tell "unchanged" from
   * "cleared"), and an {@link Instant} is ISO-8601 text only (JavaTimeModule would read a number as
   * epoch seconds and {@code ""} as no instant at all).
   */
  private static final class StrictTypes extends SimpleModule {

    StrictTypes() {
      super("StrictJsonTypes");
      addDeserializer(Instant.class, new IsoInstant());
    }

    @Override
    public void setupModule(SetupContext context) {
      super.setupModule(context);
      // Added last, so consulted before the Jdk8Module the copy already has.
      context.addDeserializers(new Jdk8Deserializers(true));
    }
  }

  /** An instant from its ISO-8601 text, such as {@code 2027-01-01T00:00:00Z}, and nothing else. */
  private static final class IsoInstant extends StdScalarDeserializer<Instant> {

    IsoInstant() {
      super(Instant.class);
    }

    @Override
    public Instant deserialize(JsonParser parser, DeserializationContext context)
        throws IOException {
      if (!parser.hasToken(JsonToken.VALUE_STRING)) {
        return (Instant) context.handleUnexpectedToken(Instant.class, parser);
      }
      try {
        return Instant.parse(parser.getText());
      } catch (DateTimeParseException e) {
        return (Instant)
            context.handleWeirdStringValue(
                Instant.class, parser.getText(), "not an ISO-8601 instant");
      }
    }
  }
}
