package io.selfhosted.gateway.product;

import com.fasterxml.jackson.databind.JsonNode;
import io.selfhosted.gateway.auth.Caller;
import io.selfhosted.gateway.openai.ChatRequests;
import io.selfhosted.gateway.openai.ChatRequests.Query;
import io.selfhosted.gateway.openai.RequestSchemas;
import io.selfhosted.gateway.system.ApiException;
import io.swagger.v3.oas.annotations.Operation;
import io.swagger.v3.oas.annotations.media.Content;
import io.swagger.v3.oas.annotations.media.Schema;
import io.swagger.v3.oas.annotations.tags.Tag;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import org.springframework.security.core.annotation.AuthenticationPrincipal;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.RequestBody;
import org.springframework.web.bind.annotation.RestController;

/** The lesson's product API for server-side callers: a turn whose events stream in the reply. */
@RestController
@Tag(name = "chat")
public class ProductController {

  private final ChatRequests requests;
  private final ProductRelay product;
  private final ConversationRepository conversations;

  ProductController(
      ChatRequests requests, ProductRelay product, ConversationRepository conversations) {
    this.requests = requests;
    this.product = product;
    this.conversations = conversations;
  }

  /** Starts a turn and streams its product events in this response (server-side callers). */
  @PostMapping("/api/chat/messages")
  @Operation(summary = "Ask in a conversation; the answer's product events stream in the reply")
  public void createMessageStream(
      @AuthenticationPrincipal Caller caller,
      @io.swagger.v3.oas.annotations.parameters.RequestBody(
              required = true,
              content =
                  @Content(schema = @Schema(implementation = RequestSchemas.ProductMessage.class)))
          @RequestBody
          JsonNode body,
      HttpServletRequest request,
      HttpServletResponse response) {
    Query query = requests.parseQuery(body);
    JsonNode id = body.get("conversationId");
    String conversationId;
    if (id == null || id.isNull()) {
      conversationId = conversations.createConversation(caller.keyId(), null).id();
    } else if (!id.isTextual()) {
      throw ApiException.invalid("conversationId", "conversationId must be a string");
    } else {
      conversationId =
          conversations
              .findConversation(caller.keyId(), id.asText())
              .orElseThrow(ConversationController::conversationNotFound)
              .id();
    }
    ProductRelay.Turn turn = product.startTurn(caller, conversationId, query, request);
    product.attach(turn.stream().reader(), 0, turn.headers(), request, response);
  }
}
