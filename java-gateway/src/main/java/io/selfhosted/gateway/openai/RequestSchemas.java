package io.selfhosted.gateway.openai;

import com.fasterxml.jackson.annotation.JsonProperty;
import io.swagger.v3.oas.annotations.media.ArraySchema;
import io.swagger.v3.oas.annotations.media.Schema;
import java.util.List;

/**
 * The request bodies of the chat endpoints as the OpenAPI document describes them. The endpoints
 * read the JSON themselves ({@link ChatRequests}, so that each wrong field gets its own 400); these
 * records only document what they accept.
 */
@org.springframework.context.annotation.Configuration(proxyBeanMethods = false)
public class RequestSchemas {

  @Schema(name = "ChatCompletionRequest", description = "An OpenAI chat completions request")
  public record ChatCompletion(
      @Schema(requiredMode = Schema.RequiredMode.REQUIRED, example = "demo-model") String model,
      @ArraySchema(minItems = 1, schema = @Schema(implementation = Message.class))
          @Schema(requiredMode = Schema.RequiredMode.REQUIRED)
          List<Message> messages,
      Boolean stream,
      @JsonProperty("stream_options") StreamOptions streamOptions,
      @JsonProperty("max_tokens") @Schema(minimum = "1") Integer maxTokens,
      @JsonProperty("max_completion_tokens") @Schema(minimum = "1") Integer maxCompletionTokens,
      @Schema(minimum = "0", maximum = "2") Double temperature,
      @JsonProperty("top_p") @Schema(minimum = "0", maximum = "1") Double topP,
      @Schema(
              description = "a string or up to 4 strings",
              oneOf = {String.class, String[].class})
          Object stop,
      @Schema(description = "any 64-bit integer") Long seed,
      @Schema(minimum = "1", maximum = "1") Integer n,
      @JsonProperty("ignore_eos")
          @Schema(description = "generate max_tokens whatever the model says (vLLM's extension)")
          Boolean ignoreEos) {}

  @Schema(name = "ChatMessage")
  public record Message(
      @Schema(
              requiredMode = Schema.RequiredMode.REQUIRED,
              allowableValues = {"system", "user", "assistant"})
          String role,
      @Schema(requiredMode = Schema.RequiredMode.REQUIRED) String content) {}

  @Schema(name = "StreamOptions")
  public record StreamOptions(@JsonProperty("include_usage") Boolean includeUsage) {}

  @Schema(name = "ProductMessageRequest", description = "A question in a conversation")
  public record ProductMessage(
      @Schema(requiredMode = Schema.RequiredMode.REQUIRED, example = "demo-model") String model,
      @Schema(requiredMode = Schema.RequiredMode.REQUIRED, maxLength = ChatRequests.MAX_QUERY_CHARS)
          String query,
      @Schema(description = "the conversation to ask in; a new one when absent")
          String conversationId) {}

  /** Lists the configured models in the document, so that clients (and fuzzers) know them. */
  @org.springframework.context.annotation.Bean
  static org.springdoc.core.customizers.OpenApiCustomizer modelNames(
      io.selfhosted.gateway.models.ModelProfiles profiles) {
    return openApi -> {
      var schemas = openApi.getComponents() == null ? null : openApi.getComponents().getSchemas();
      if (schemas == null) {
        return;
      }
      List<String> names =
          profiles.all().stream()
              .map(io.selfhosted.gateway.models.ModelProperties.ModelProfile::name)
              .toList();
      for (String schema : List.of("ChatCompletionRequest", "ProductMessageRequest")) {
        io.swagger.v3.oas.models.media.Schema<?> body = schemas.get(schema);
        if (body != null && body.getProperties() != null) {
          @SuppressWarnings("unchecked")
          io.swagger.v3.oas.models.media.Schema<String> model =
              (io.swagger.v3.oas.models.media.Schema<String>) body.getProperties().get("model");
          if (model != null) {
            model.setEnum(names);
          }
        }
      }
    };
  }
}
