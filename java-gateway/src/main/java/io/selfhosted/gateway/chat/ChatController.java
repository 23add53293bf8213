package io.selfhosted.gateway.chat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.selfhosted.gateway.chat.ChatRequests.Completion;
import io.selfhosted.gateway.chat.ChatRequests.Query;
import io.selfhosted.gateway.system.ApiException;
import io.selfhosted.gateway.system.GatewayProperties.ModelProfile;
import io.selfhosted.gateway.system.RequestIdFilter;
import io.selfhosted.gateway.upstream.UpstreamPool;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import org.springframework.http.ResponseEntity;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.RequestBody;
import org.springframework.web.bind.annotation.RestController;

/** The OpenAI-compatible API for business apps, and the product stream for server callers. */
@RestController
public class ChatController {

  private final ChatRequests requests;
  private final ModelProfiles profiles;
  private final RelayService relay;
  private final UpstreamPool pool;
  private final ConversationRepository conversations;
  private final ObjectMapper mapper;

  ChatController(
      ChatRequests requests,
      ModelProfiles profiles,
      RelayService relay,
      UpstreamPool pool,
      ConversationRepository conversations,
      ObjectMapper mapper) {
    this.requests = requests;
    this.profiles = profiles;
    this.relay = relay;
    this.pool = pool;
    this.conversations = conversations;
    this.mapper = mapper;
  }

  @GetMapping("/v1/models")
  public ObjectNode listModels() {
    ObjectNode list = mapper.createObjectNode().put("object", "list");
    ArrayNode data = list.putArray("data");
    for (ModelProfile profile : profiles.all()) {
      data.addObject()
          .put("id", profile.name())
          .put("object", "model")
          .put("created", 0)
          .put("owned_by", "self-hosted");
    }
    return list;
  }

  @PostMapping("/v1/chat/completions")
  public ResponseEntity<JsonNode> createChatCompletion(
      @RequestBody JsonNode body, HttpServletRequest request, HttpServletResponse response) {
    Completion completion = requests.parseCompletion(body);
    if (completion.stream()) {
      relay.streamCompletion(completion, request, response);
      return null; // the answer is written on the servlet async context as it arrives
    }
    JsonNode answer =
        pool.call("/v1/chat/completions", completion.upstreamBody(), RequestIdFilter.of(request));
    if (answer instanceof ObjectNode object) {
      object.put("model", completion.profile().name());
    }
    return ResponseEntity.ok(answer);
  }

  /** Starts a turn and streams its product events in this response (server-side callers). */
  @PostMapping("/api/chat/messages")
  public void createMessageStream(
      @RequestBody JsonNode body, HttpServletRequest request, HttpServletResponse response) {
    Query query = requests.parseQuery(body);
    JsonNode id = body.get("conversationId");
    String conversationId;
    if (id == null || id.isNull()) {
      conversationId = conversations.createConversation(null).id();
    } else if (!id.isTextual()) {
      throw ApiException.invalid("conversationId", "conversationId must be a string");
    } else {
      conversationId =
          conversations
              .findConversation(id.asText())
              .orElseThrow(() -> ConversationController.conversationNotFound())
              .id();
    }
    GenerationStream stream = relay.startTurn(conversationId, query, request);
    relay.attach(stream, 0, request, response);
  }
}
