package io.selfhosted.gateway.openai;

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
 * {@code top_logprobs} only with {@code logprobs: true}, as OpenAI has it. A check of two fields,
 * so it sits on the request; the error it makes names {@code top_logprobs}.
 */
@Documented
@Constraint(validatedBy = TopLogprobsNeedLogprobs.Check.class)
@Target(ElementType.TYPE)
@Retention(RetentionPolicy.RUNTIME)
public @interface TopLogprobsNeedLogprobs {

  String message() default "requires logprobs to be true";

  Class<?>[] groups() default {};

  Class<? extends Payload>[] payload() default {};

  /** Checks {@link TopLogprobsNeedLogprobs}. */
  class Check implements ConstraintValidator<TopLogprobsNeedLogprobs, ChatCompletionRequest> {
    @Override
    public boolean isValid(
        @Nullable ChatCompletionRequest request, ConstraintValidatorContext context) {
      if (request == null
          || request.topLogprobs() == null
          || Boolean.TRUE.equals(request.logprobs())) {
        return true;
      }
      context.disableDefaultConstraintViolation();
      context
          .buildConstraintViolationWithTemplate(context.getDefaultConstraintMessageTemplate())
          .addPropertyNode("topLogprobs")
          .addConstraintViolation();
      return false;
    }
  }
}
