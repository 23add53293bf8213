package io.selfhosted.gateway.openai;

import io.swagger.v3.oas.annotations.media.Schema;

/**
 * The request body of the product chat endpoint as the OpenAPI document describes it. The endpoint
 * reads the JSON itself ({@link ChatRequests}, so that each wrong field gets its own 400); this
 * record only documents what it accepts.
 */
@org.springframework.context.annotation.Configuration(proxyBeanMethods = false)
public class RequestSchemas {

  @Schema(name = "ProductMessageRequest", description = "A question in a conversation")
  public record ProductMessage(
      @Schema(requiredMode = Schema.RequiredMode.REQUIRED, example = "demo-model") String model,
      @Schema(requiredMode = Schema.RequiredMode.REQUIRED, maxLength = ChatRequests.MAX_QUERY_CHARS)
          String query,
      @Schema(description = "the conversation to ask in; a new one when absent")
          String conversationId) {}
}
