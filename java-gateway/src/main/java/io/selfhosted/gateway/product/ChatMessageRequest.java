package io.selfhosted.gateway.product;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import io.selfhosted.gateway.system.StrictJson;
import io.swagger.v3.oas.annotations.media.Schema;
import jakarta.validation.constraints.NotBlank;
import jakarta.validation.constraints.NotNull;
import jakarta.validation.constraints.Size;
import org.springframework.lang.Nullable;

/** A question for {@code POST /api/chat/messages}, in a conversation or a new one. */
@StrictJson
@JsonIgnoreProperties(ignoreUnknown = true)
@Schema(name = "ProductMessageRequest", description = "A question in a conversation")
public record ChatMessageRequest(
    @NotNull(message = "is required") @Schema(example = "demo-model") String model,
    @NotNull(message = "is required")
        @NotBlank(message = "must not be empty")
        @Size(max = MessageRequest.MAX_QUERY_CHARS, message = "is longer than {max} characters")
        String query,
    @Schema(description = "the conversation to ask in; a new one when absent") @Nullable
        String conversationId) {

  /** The same question as a turn of the conversation API. */
  MessageRequest message() {
    return new MessageRequest(model, query, null);
  }
}
