package io.selfhosted.gateway.openai;

import com.fasterxml.jackson.databind.JsonNode;
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
 * A message's content as OpenAI takes it: a string, or an array of content parts of which a text
 * model can only serve the text ones ({@code {"type": "text", "text": "..."}}). Bound as JSON
 * because Jackson has no type that is either; null (left out or sent as null) is left to {@link
 * MessageShape}, which knows when a message may have no content.
 */
@Documented
@Constraint(validatedBy = TextContent.Check.class)
@Target({ElementType.FIELD, ElementType.METHOD, ElementType.PARAMETER})
@Retention(RetentionPolicy.RUNTIME)
public @interface TextContent {

  String MESSAGE = "must be a string or an array of text content parts";

  String message() default MESSAGE;

  Class<?>[] groups() default {};

  Class<? extends Payload>[] payload() default {};

  /** Checks {@link TextContent}. */
  class Check implements ConstraintValidator<TextContent, JsonNode> {
    @Override
    public boolean isValid(@Nullable JsonNode content, ConstraintValidatorContext context) {
      return content == null
          || content.isNull()
          || ChatCompletionRequest.ChatMessage.textOf(content) != null;
    }
  }
}
