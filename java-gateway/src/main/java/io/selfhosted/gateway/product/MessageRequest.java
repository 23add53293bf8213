package io.selfhosted.gateway.product;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import io.selfhosted.gateway.system.StrictJson;
import io.swagger.v3.oas.annotations.media.Schema;
import jakarta.validation.Constraint;
import jakarta.validation.ConstraintValidator;
import jakarta.validation.ConstraintValidatorContext;
import jakarta.validation.Payload;
import jakarta.validation.constraints.NotNull;
import jakarta.validation.constraints.Size;
import java.lang.annotation.Documented;
import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;
import org.springframework.lang.Nullable;

/** A turn in a conversation: a new question, or the last one asked again. */
@StrictJson
@JsonIgnoreProperties(ignoreUnknown = true)
@MessageRequest.AsksOrRegenerates
@Schema(
    name = "MessageRequest",
    description = "A question in a conversation, or {model, regenerate: true} for a new answer")
public record MessageRequest(
    @NotNull(message = "is required") @Schema(example = "demo-model") String model,
    @Size(max = MessageRequest.MAX_QUERY_CHARS, message = "is longer than {max} characters")
        @Schema(description = "the question; required unless regenerating")
        @Nullable
        String query,
    @Schema(
            description =
                "ask the conversation's last question again: its answer is replaced, and left out"
                    + " of what the model sees")
        @Nullable
        Boolean regenerate) {

  /** The longest question, in UTF-16 characters. */
  public static final int MAX_QUERY_CHARS = 32_000;

  /** Whether this asks the last question again rather than a new one. */
  public boolean regenerating() {
    return Boolean.TRUE.equals(regenerate);
  }

  /** A query unless regenerating, none when regenerating; reported on the query field. */
  @Documented
  @Constraint(validatedBy = AsksOrRegenerates.Check.class)
  @Target(ElementType.TYPE)
  @Retention(RetentionPolicy.RUNTIME)
  @interface AsksOrRegenerates {
    String message() default "a query, or regenerate: true without one";

    Class<?>[] groups() default {};

    Class<? extends Payload>[] payload() default {};

    /** Checks {@link AsksOrRegenerates}. */
    class Check implements ConstraintValidator<AsksOrRegenerates, MessageRequest> {
      @Override
      public boolean isValid(@Nullable MessageRequest request, ConstraintValidatorContext context) {
        String problem = request == null ? null : problem(request);
        if (problem == null) {
          return true;
        }
        context.disableDefaultConstraintViolation();
        context
            .buildConstraintViolationWithTemplate(problem)
            .addPropertyNode("query")
            .addConstraintViolation();
        return false;
      }

      private static @Nullable String problem(MessageRequest request) {
        if (request.regenerating()) {
          return request.query() == null
              ? null
              : "must be left out when regenerating: the last question is asked again";
        }
        if (request.query() == null) {
          return "is required";
        }
        return request.query().isBlank() ? "must not be empty" : null;
      }
    }
  }
}
