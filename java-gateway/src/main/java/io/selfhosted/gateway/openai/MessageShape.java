package io.selfhosted.gateway.openai;

import io.selfhosted.gateway.openai.ChatCompletionRequest.ChatMessage;
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
 * What each role's message carries, as OpenAI has it: content, except on an assistant message that
 * calls tools; {@code tool_calls} only from the assistant; {@code tool_call_id} on every {@code
 * tool} message and nowhere else. Each error names the field it is about.
 */
@Documented
@Constraint(validatedBy = MessageShape.Check.class)
@Target(ElementType.TYPE)
@Retention(RetentionPolicy.RUNTIME)
public @interface MessageShape {

  String message() default "is not a valid message";

  Class<?>[] groups() default {};

  Class<? extends Payload>[] payload() default {};

  /** Checks {@link MessageShape}. */
  class Check implements ConstraintValidator<MessageShape, ChatMessage> {
    @Override
    public boolean isValid(@Nullable ChatMessage message, ConstraintValidatorContext context) {
      if (message == null || message.role() == null) {
        return true; // the role's own check speaks
      }
      boolean assistant = message.role().equals("assistant");
      boolean tool = message.role().equals("tool");
      boolean callsTools = message.toolCalls() != null && !message.toolCalls().isEmpty();
      boolean valid = true;
      context.disableDefaultConstraintViolation();
      if ((message.content() == null || message.content().isNull()) && !(assistant && callsTools)) {
        valid = violation(context, "content", TextContent.MESSAGE);
      }
      if (message.toolCalls() != null && !assistant) {
        valid = violation(context, "toolCalls", "is only allowed on assistant messages");
      }
      if (tool && message.toolCallId() == null) {
        valid = violation(context, "toolCallId", "is required on tool messages");
      }
      if (!tool && message.toolCallId() != null) {
        valid = violation(context, "toolCallId", "is only allowed on tool messages");
      }
      return valid;
    }

    private static boolean violation(
        ConstraintValidatorContext context, String field, String message) {
      context
          .buildConstraintViolationWithTemplate(message)
          .addPropertyNode(field)
          .addConstraintViolation();
      return false;
    }
  }
}
