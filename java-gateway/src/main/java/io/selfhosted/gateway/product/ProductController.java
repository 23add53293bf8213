package io.selfhosted.gateway.product;

import io.selfhosted.gateway.auth.Caller;
import io.swagger.v3.oas.annotations.Operation;
import io.swagger.v3.oas.annotations.tags.Tag;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import jakarta.validation.Valid;
import org.springframework.security.core.annotation.AuthenticationPrincipal;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.RequestBody;
import org.springframework.web.bind.annotation.RestController;

/** The lesson's product API for server-side callers: a turn whose events stream in the reply. */
@RestController
@Tag(name = "chat")
public class ProductController {

  private final ProductRelay product;
  private final ConversationRepository conversations;

  ProductController(ProductRelay product, ConversationRepository conversations) {
    this.product = product;
    this.conversations = conversations;
  }

  /** Starts a turn and streams its product events in this response (server-side callers). */
  @PostMapping("/api/chat/messages")
  @Operation(summary = "Ask in a conversation; the answer's product events stream in the reply")
  public void createMessageStream(
      @AuthenticationPrincipal Caller caller,
      @Valid @RequestBody ChatMessageRequest body,
      HttpServletRequest request,
      HttpServletResponse response) {
    String conversationId =
        body.conversationId() == null
            ? null
            : conversations
                .findConversation(caller.keyId(), body.conversationId())
                .orElseThrow(ConversationController::conversationNotFound)
                .id();
    ProductRelay.Turn turn = product.startTurn(caller, conversationId, body.message(), request);
    product.attach(turn.stream().reader(), 0, turn.headers(), request, response);
  }
}
