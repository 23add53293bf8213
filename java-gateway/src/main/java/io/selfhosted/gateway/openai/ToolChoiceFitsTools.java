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
import java.util.Set;
import org.springframework.lang.Nullable;

/**
 * {@code tool_choice} as OpenAI takes it: {@code auto}, {@code none}, {@code required}, or {@code
 * {"type": "function", "function": {"name": ...}}} naming one of the request's tools; and only with
 * {@code tools}. A check across fields, so it sits on the request; its errors name {@code
 * tool_choice}.
 */
@Documented
@Constraint(validatedBy = ToolChoiceFitsTools.Check.class)
@Target(ElementType.TYPE)
@Retention(RetentionPolicy.RUNTIME)
public @interface ToolChoiceFitsTools {

  // No braces: Bean Validation would read them as message parameters.
  String SHAPES =
      "must be auto, none, required, or a named function: type function with function.name";

  String message() default SHAPES;

  Class<?>[] groups() default {};

  Class<? extends Payload>[] payload() default {};

  /** Checks {@link ToolChoiceFitsTools}. */
  class Check implements ConstraintValidator<ToolChoiceFitsTools, ChatCompletionRequest> {

    private static final Set<String> MODES = Set.of("auto", "none", "required");

    @Override
    public boolean isValid(
        @Nullable ChatCompletionRequest request, ConstraintValidatorContext context) {
      JsonNode choice = request == null ? null : request.toolChoice();
      if (choice == null || choice.isNull()) {
        return true;
      }
      String problem = problem(choice, request);
      if (problem == null) {
        return true;
      }
      context.disableDefaultConstraintViolation();
      context
          .buildConstraintViolationWithTemplate(problem)
          .addPropertyNode("toolChoice")
          .addConstraintViolation();
      return false;
    }

    private static @Nullable String problem(JsonNode choice, ChatCompletionRequest request) {
      String named = null;
      if (choice.isTextual()) {
        if (!MODES.contains(choice.asText())) {
          return SHAPES;
        }
      } else {
        JsonNode name = choice.path("function").path("name");
        if (!choice.isObject()
            || choice.size() != 2
            || !"function".equals(choice.path("type").textValue())
            || choice.get("function").size() != 1
            || !name.isTextual()) {
          return SHAPES;
        }
        named = name.asText();
      }
      if (request.tools() == null || request.tools().isEmpty()) {
        return "requires tools";
      }
      if (named != null && !offers(request, named)) {
        // The name is echoed only when it is a valid one: no client text of any size goes back.
        return ChatCompletionRequest.FUNCTION_NAME.matcher(named).matches()
            ? "names the function '" + named + "', which is not in tools"
            : "names a function that is not in tools";
      }
      return null;
    }

    private static boolean offers(ChatCompletionRequest request, String name) {
      return request.tools().stream()
          .anyMatch(
              tool ->
                  tool != null && tool.function() != null && name.equals(tool.function().name()));
    }
  }
}
