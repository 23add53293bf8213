package io.selfhosted.gateway.openai;

import io.selfhosted.gateway.openai.ChatCompletionRequest.ResponseFormat;
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
 * {@code response_format.json_schema} with type {@code json_schema}, and only then; the error names
 * {@code response_format.json_schema}.
 */
@Documented
@Constraint(validatedBy = ResponseFormatShape.Check.class)
@Target(ElementType.TYPE)
@Retention(RetentionPolicy.RUNTIME)
public @interface ResponseFormatShape {

  String message() default "is required when type is json_schema";

  Class<?>[] groups() default {};

  Class<? extends Payload>[] payload() default {};

  /** Checks {@link ResponseFormatShape}. */
  class Check implements ConstraintValidator<ResponseFormatShape, ResponseFormat> {
    @Override
    public boolean isValid(@Nullable ResponseFormat format, ConstraintValidatorContext context) {
      if (format == null || format.type() == null) {
        return true;
      }
      boolean wantsSchema = format.type().equals("json_schema");
      if (wantsSchema == (format.jsonSchema() != null)) {
        return true;
      }
      context.disableDefaultConstraintViolation();
      context
          .buildConstraintViolationWithTemplate(
              wantsSchema
                  ? context.getDefaultConstraintMessageTemplate()
                  : "is only allowed when type is json_schema")
          .addPropertyNode("jsonSchema")
          .addConstraintViolation();
      return false;
    }
  }
}
