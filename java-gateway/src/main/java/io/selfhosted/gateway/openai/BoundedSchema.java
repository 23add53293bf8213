package io.selfhosted.gateway.openai;

import com.fasterxml.jackson.databind.JsonNode;
import io.selfhosted.gateway.upstream.TokenEstimate;
import jakarta.validation.Constraint;
import jakarta.validation.ConstraintValidator;
import jakarta.validation.ConstraintValidatorContext;
import jakarta.validation.Payload;
import java.lang.annotation.Documented;
import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;
import org.springframework.lang.Nullable;

/**
 * A JSON Schema the gateway forwards (a tool's {@code parameters}, a {@code json_schema}): a JSON
 * object of bounded depth and size, so that no client can make every upstream parse and compile a
 * pathological one. Whether it is a schema the model service can enforce is the model service's to
 * say. Left out (Java null) is left to {@code @NotNull}.
 */
@Documented
@Constraint(validatedBy = BoundedSchema.Check.class)
@Target({ElementType.FIELD, ElementType.METHOD, ElementType.PARAMETER})
@Retention(RetentionPolicy.RUNTIME)
public @interface BoundedSchema {

  /** Levels of objects and arrays, the schema object itself being the first. */
  int MAX_DEPTH = 64;

  /** Bytes of the schema as compact JSON. */
  int MAX_BYTES = 64 * 1024;

  String message() default "must be a JSON Schema object";

  Class<?>[] groups() default {};

  Class<? extends Payload>[] payload() default {};

  /** Checks {@link BoundedSchema}. */
  class Check implements ConstraintValidator<BoundedSchema, JsonNode> {
    @Override
    public boolean isValid(@Nullable JsonNode schema, ConstraintValidatorContext context) {
      if (schema == null) {
        return true;
      }
      if (!schema.isObject()) {
        return false;
      }
      String problem = null;
      if (depth(schema, 1) > MAX_DEPTH) {
        problem = "must not nest deeper than " + MAX_DEPTH + " levels";
      } else if (TokenEstimate.utf8Bytes(schema.toString()) > MAX_BYTES) {
        problem = "must be at most " + MAX_BYTES + " bytes as JSON";
      }
      if (problem == null) {
        return true;
      }
      context.disableDefaultConstraintViolation();
      context.buildConstraintViolationWithTemplate(problem).addConstraintViolation();
      return false;
    }

    /** The depth of {@code node} at {@code level}, counting no further than one past the limit. */
    private static int depth(JsonNode node, int level) {
      if (level > MAX_DEPTH || !node.isContainerNode()) {
        return node.isContainerNode() ? level : level - 1;
      }
      int deepest = level;
      for (JsonNode child : node) {
        deepest = Math.max(deepest, depth(child, level + 1));
        if (deepest > MAX_DEPTH) {
          break;
        }
      }
      return deepest;
    }
  }
}
