package io.selfhosted.gateway.product;

import io.selfhosted.gateway.auth.Caller;
import io.selfhosted.gateway.product.ConversationRepository.Conversation;
import io.selfhosted.gateway.product.ConversationRepository.Message;
import io.selfhosted.gateway.stream.ResumableStream;
import io.selfhosted.gateway.stream.StreamStore;
import io.selfhosted.gateway.system.ApiException;
import io.swagger.v3.oas.annotations.tags.Tag;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import jakarta.validation.Valid;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import org.springframework.http.HttpStatus;
import org.springframework.http.ResponseEntity;
import org.springframework.security.core.annotation.AuthenticationPrincipal;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PathVariable;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.RequestBody;
import org.springframework.web.bind.annotation.RequestHeader;
import org.springframework.web.bind.annotation.RequestParam;
import org.springframework.web.bind.annotation.RestController;

/** Conversations, their messages, and the browser's resumable streams. */
@RestController
@Tag(name = "conversations")
public class ConversationController {

  private final ConversationRepository conversations;
  private final ProductRelay relay;
  private final StreamStore streams;

  ConversationController(
      ConversationRepository conversations, ProductRelay relay, StreamStore streams) {
    this.conversations = conversations;
    this.relay = relay;
    this.streams = streams;
  }

  /** A conversation as the API shows it. */
  public record ConversationView(String id, String title, Instant createdAt, Instant updatedAt) {
    static ConversationView of(Conversation c) {
      return new ConversationView(c.id(), c.title(), c.createdAt(), c.updatedAt());
    }
  }

  /**
   * A message as the API shows it; a streaming answer shows its text so far.
   *
   * @param degradedReason the degradations an answer got, comma-separated; null when none
   */
  public record MessageView(
      String id,
      String role,
      String content,
      String status,
      String model,
      String finishReason,
      Integer promptTokens,
      Integer completionTokens,
      boolean degraded,
      String degradedReason,
      Instant createdAt) {}

  /** Where the browser fetches the answer it just asked for. */
  public record TurnStarted(String messageId, String conversationId, String streamUrl) {}

  static ApiException conversationNotFound() {
    return ApiException.notFound(
        "conversation_not_found", "conversationId", "no such conversation");
  }

  @PostMapping("/api/conversations")
  public ResponseEntity<Map<String, String>> createConversation(
      @AuthenticationPrincipal Caller caller,
      @Valid @RequestBody(required = false) ConversationRequest body) {
    Conversation conversation =
        conversations.createConversation(caller.keyId(), body == null ? null : body.title());
    return ResponseEntity.status(HttpStatus.CREATED).body(Map.of("id", conversation.id()));
  }

  @GetMapping("/api/conversations")
  public Map<String, List<ConversationView>> listConversations(
      @AuthenticationPrincipal Caller caller) {
    return Map.of(
        "data",
        conversations.listConversations(caller.keyId(), 200).stream()
            .map(ConversationView::of)
            .toList());
  }

  @GetMapping("/api/conversations/{id}/messages")
  public Map<String, List<MessageView>> listMessages(
      @AuthenticationPrincipal Caller caller, @PathVariable String id) {
    conversations
        .findConversation(caller.keyId(), id)
        .orElseThrow(ConversationController::conversationNotFound);
    return Map.of("data", conversations.listMessages(id).stream().map(this::view).toList());
  }

  @PostMapping("/api/conversations/{id}/messages")
  public ResponseEntity<TurnStarted> createMessage(
      @AuthenticationPrincipal Caller caller,
      @PathVariable String id,
      @Valid @RequestBody MessageRequest body,
      HttpServletRequest request) {
    conversations
        .findConversation(caller.keyId(), id)
        .orElseThrow(ConversationController::conversationNotFound);
    ProductRelay.Turn turn = relay.startTurn(caller, id, body, request);
    String messageId = turn.stream().messageId();
    var reply = ResponseEntity.status(HttpStatus.ACCEPTED);
    turn.headers().forEach((name, value) -> reply.header(name, value));
    return reply.body(new TurnStarted(messageId, id, "/api/streams/" + messageId));
  }

  /** The EventSource stream of one answer; Last-Event-ID resumes after that event. */
  @GetMapping("/api/streams/{messageId}")
  public ResponseEntity<Void> streamMessage(
      @AuthenticationPrincipal Caller caller,
      @PathVariable String messageId,
      @RequestHeader(name = "Last-Event-ID", required = false) String lastEventIdHeader,
      @RequestParam(name = "lastEventId", required = false) String lastEventIdParam,
      HttpServletRequest request,
      HttpServletResponse response) {
    ResumableStream stream =
        streams
            .find(messageId)
            .filter(s -> s.ownerKeyId().equals(caller.keyId()))
            .orElseThrow(this::streamNotFound);
    long lastEventId =
        parseLastEventId(lastEventIdHeader != null ? lastEventIdHeader : lastEventIdParam);
    switch (stream.checkResume(lastEventId)) {
      case BEYOND_STREAM ->
          throw ApiException.invalid(
              "Last-Event-ID", "Last-Event-ID " + lastEventId + " lies beyond this stream");
      case NOTHING_LEFT -> {
        // 204 tells an EventSource that the stream is over and not to reconnect.
        return ResponseEntity.noContent().build();
      }
      case OK -> relay.attach(stream, lastEventId, Map.of(), request, response);
    }
    return null; // the events are written on the servlet async context
  }

  @PostMapping("/api/streams/{messageId}/cancel")
  public Map<String, String> cancelStream(
      @AuthenticationPrincipal Caller caller, @PathVariable String messageId) {
    var live = streams.find(messageId).filter(s -> s.ownerKeyId().equals(caller.keyId()));
    if (live.isPresent()) {
      relay.cancel(live.get(), "cancelled by the user");
    }
    Message message =
        conversations
            .findMessage(caller.keyId(), messageId)
            .filter(m -> "assistant".equals(m.role()))
            .orElseThrow(this::streamNotFound);
    return Map.of("messageId", messageId, "status", message.status());
  }

  private ApiException streamNotFound() {
    return ApiException.notFound("stream_not_found", "messageId", "no such message stream");
  }

  private static long parseLastEventId(String value) {
    if (value == null || value.isBlank()) {
      return 0;
    }
    try {
      long id = Long.parseLong(value.trim());
      if (id < 0) {
        throw new NumberFormatException();
      }
      return id;
    } catch (NumberFormatException e) {
      throw ApiException.invalid("Last-Event-ID", "Last-Event-ID must be a non-negative integer");
    }
  }

  private MessageView view(Message m) {
    String content = m.content();
    if (ConversationRepository.STREAMING.equals(m.status())) {
      String live = relay.liveText(m.id());
      content = live == null ? content : live;
    }
    return new MessageView(
        m.id(),
        m.role(),
        content,
        m.status(),
        m.model(),
        m.finishReason(),
        m.promptTokens(),
        m.completionTokens(),
        m.degraded() != null,
        m.degraded(),
        m.createdAt());
  }
}
