package io.selfhosted.gateway.product;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.selfhosted.gateway.auth.Caller;
import io.selfhosted.gateway.models.ChatCalls;
import io.selfhosted.gateway.models.ModelProfiles;
import io.selfhosted.gateway.models.ModelProperties.ModelProfile;
import io.selfhosted.gateway.pipeline.Delivery;
import io.selfhosted.gateway.pipeline.Exchange;
import io.selfhosted.gateway.pipeline.Outcome;
import io.selfhosted.gateway.pipeline.StreamPipeline;
import io.selfhosted.gateway.sse.Heartbeats;
import io.selfhosted.gateway.sse.SseConnection;
import io.selfhosted.gateway.stream.ResumableStream;
import io.selfhosted.gateway.stream.StreamStore;
import io.selfhosted.gateway.stream.StreamWriter;
import io.selfhosted.gateway.system.ApiException;
import io.selfhosted.gateway.system.RequestIdFilter;
import io.selfhosted.gateway.upstream.ChatCall;
import io.selfhosted.gateway.upstream.Chunk;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.dao.DataAccessException;
import org.springframework.http.HttpStatus;
import org.springframework.lang.Nullable;
import org.springframework.stereotype.Service;

/**
 * The product surface as a thin adapter onto the stream pipeline: each answer is stored, and its
 * events go to a resumable stream (in this process or shared through Redis, see {@link
 * StreamStore}) that outlives a dropped browser for a grace period.
 */
@Service
public class ProductRelay {

  private static final Logger log = LoggerFactory.getLogger(ProductRelay.class);

  private final StreamPipeline pipeline;
  private final StreamStore streams;
  private final OwnerLeases leases;
  private final ConversationRepository conversations;
  private final ModelProfiles profiles;
  private final Heartbeats heartbeats;
  private final ObjectMapper mapper;

  ProductRelay(
      StreamPipeline pipeline,
      StreamStore streams,
      OwnerLeases leases,
      ConversationRepository conversations,
      ModelProfiles profiles,
      Heartbeats heartbeats,
      ObjectMapper mapper) {
    this.pipeline = pipeline;
    this.streams = streams;
    this.leases = leases;
    this.conversations = conversations;
    this.profiles = profiles;
    this.heartbeats = heartbeats;
    this.mapper = mapper;
  }

  /** A started answer and the response headers its admission set (rate-limit state). */
  record Turn(StreamWriter stream, Map<String, String> headers) {}

  /**
   * Admits the turn, stores it, starts generating the answer, and returns its stream. The turn asks
   * in the conversation {@code conversationId}, or in a new one when that is null (made once the
   * model is known to exist). A regenerate asks the conversation's last question again: once
   * admitted, the last question and its answer are replaced by the new turn, and the old answer is
   * not in the model's context.
   */
  Turn startTurn(
      Caller caller,
      @Nullable String conversationId,
      MessageRequest message,
      HttpServletRequest request) {
    ModelProfile profile = profiles.resolve(message.model());
    String conversation =
        conversationId != null
            ? conversationId
            : conversations.createConversation(caller.keyId(), null).id();
    List<ConversationRepository.Message> stored = conversations.listMessages(conversation);
    if (!message.regenerating()) {
      return startTurn(caller, conversation, profile, message.query(), stored, List.of(), request);
    }
    int n = stored.size();
    if (n < 2
        || !"user".equals(stored.get(n - 2).role())
        || !"assistant".equals(stored.get(n - 1).role())) {
      throw new ApiException(
          HttpStatus.CONFLICT,
          "invalid_request_error",
          "nothing_to_regenerate",
          "regenerate",
          "the conversation does not end with an answer to regenerate");
    }
    if (ConversationRepository.STREAMING.equals(stored.get(n - 1).status())) {
      throw new ApiException(
          HttpStatus.CONFLICT,
          "invalid_request_error",
          "answer_in_progress",
          "regenerate",
          "the last answer is still being generated; stop it first");
    }
    return startTurn(
        caller,
        conversation,
        profile,
        stored.get(n - 2).content(),
        stored.subList(0, n - 2),
        List.of(stored.get(n - 2).id(), stored.get(n - 1).id()),
        request);
  }

  private Turn startTurn(
      Caller caller,
      String conversationId,
      ModelProfile profile,
      String query,
      List<ConversationRepository.Message> earlier,
      List<String> replacing,
      HttpServletRequest request) {
    List<ChatCall.Message> messages = history(earlier);
    messages.add(new ChatCall.Message("user", query));
    String model = profile.name();
    Exchange exchange =
        new Exchange(
            RequestIdFilter.of(request),
            caller,
            model,
            "product",
            true,
            ChatCalls.of(profile, messages, ChatCalls.Sampling.DEFAULTS),
            RequestIdFilter.startNanos(request));
    StreamPipeline.Run run = pipeline.admit(exchange);
    StreamWriter stream;
    try {
      conversations.deleteMessages(conversationId, replacing);
      conversations.insertMessage(
          conversationId, "user", query, ConversationRepository.COMPLETE, model);
      var assistant =
          conversations.insertStreamingAnswer(
              conversationId, model, leases.instance(), leases.firstLeaseEnd());
      stream = streams.create(assistant.id(), conversationId, caller.keyId(), run::cancel);
      leases.started(assistant.id());
    } catch (RuntimeException e) {
      run.abandon(
          new ApiException(
              HttpStatus.INTERNAL_SERVER_ERROR,
              "server_error",
              "storage_error",
              null,
              "could not store the conversation"));
      throw e;
    }
    run.start(new ProductDelivery(stream));
    stream.scheduleGraceIfUnattended();
    return new Turn(stream, exchange.headers());
  }

  /**
   * The earlier turns the model sees: each question with the answer it got, leaving out turns whose
   * answer did not come from the model (maintenance, a canned fallback) or failed, so that roles
   * still alternate.
   */
  static List<ChatCall.Message> history(List<ConversationRepository.Message> messages) {
    List<ChatCall.Message> history = new ArrayList<>();
    ConversationRepository.Message question = null;
    for (ConversationRepository.Message m : messages) {
      if ("user".equals(m.role())) {
        question = m;
        continue;
      }
      if (question != null && fromTheModel(m)) {
        history.add(new ChatCall.Message("user", question.content()));
        history.add(new ChatCall.Message("assistant", m.content()));
      }
      question = null;
    }
    return history;
  }

  private static boolean fromTheModel(ConversationRepository.Message answer) {
    boolean ended =
        ConversationRepository.COMPLETE.equals(answer.status())
            || ConversationRepository.CANCELLED.equals(answer.status());
    String degraded = answer.degraded() == null ? "" : answer.degraded();
    return ended
        && !answer.content().isBlank()
        && !degraded.contains("maintenance")
        && !degraded.contains("fallback_reply");
  }

  /** Attaches a client to a product stream, replaying everything after {@code lastEventId}. */
  void attach(
      ResumableStream stream,
      long lastEventId,
      Map<String, String> headers,
      HttpServletRequest request,
      HttpServletResponse response) {
    SseConnection connection = SseConnection.start(request, response, heartbeats);
    connection.header("X-Message-Id", stream.messageId());
    connection.header("X-Conversation-Id", stream.conversationId());
    headers.forEach(connection::header);
    connection.open();
    connection.onClose(() -> stream.detach(connection));
    stream.attach(lastEventId, connection);
  }

  /**
   * Stops a generation, on whichever gateway runs it; the partial answer is stored as cancelled.
   * Idempotent.
   */
  void cancel(ResumableStream stream, String why) {
    streams.cancel(stream, why);
  }

  /** The text generated so far for a message still streaming, if its stream is known. */
  String liveText(String messageId) {
    return streams.liveText(messageId).orElse(null);
  }

  private String json(Object value) {
    try {
      return mapper.writeValueAsString(value);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException(e);
    }
  }

  /** Turns pipeline events into the product events of one stored answer. */
  private final class ProductDelivery implements Delivery {
    private final StreamWriter stream;

    ProductDelivery(StreamWriter stream) {
      this.stream = stream;
    }

    @Override
    public void chunk(Exchange exchange, Chunk chunk) {
      if (!chunk.text().isEmpty()) {
        ObjectNode data =
            mapper
                .createObjectNode()
                .put("text", chunk.text())
                .put("message_id", stream.messageId());
        stream.appendText(chunk.text(), json(data));
      }
    }

    @Override
    public void end(Exchange exchange, Outcome outcome) {
      if (!stream.beginEnd()) {
        return;
      }
      String status =
          switch (outcome.status()) {
            case COMPLETED -> ConversationRepository.COMPLETE;
            case CANCELLED -> ConversationRepository.CANCELLED;
            default -> ConversationRepository.FAILED;
          };
      // Stored before the final event goes out, so a client that saw it reads the stored answer.
      try {
        conversations.finishMessage(
            stream.messageId(),
            stream.text(),
            status,
            outcome.finishReason(),
            outcome.promptTokens(),
            outcome.completionTokens(),
            exchange.degradedReason());
      } catch (DataAccessException e) {
        log.error("could not store message {}", stream.messageId(), e);
      }
      leases.ended(stream.messageId());
      ObjectNode data = mapper.createObjectNode().put("message_id", stream.messageId());
      if (outcome.status() == Outcome.Status.FAILED && outcome.error() != null) {
        ApiException failure = outcome.error();
        data.putObject("error")
            .put("message", failure.getMessage())
            .put("type", failure.type())
            .put("code", failure.code());
        stream.end("error", json(data));
      } else {
        data.put("finish_reason", outcome.finishReason());
        ObjectNode usage =
            data.putObject("usage")
                .put("prompt_tokens", outcome.promptTokens())
                .put("completion_tokens", outcome.completionTokens())
                .put("total_tokens", outcome.totalTokens());
        if (outcome.usageEstimated()) {
          usage.put("estimated", true);
        }
        data.put("degraded", exchange.degraded());
        if (exchange.degraded()) {
          data.put("degraded_reason", exchange.degradedReason());
        }
        stream.end("finish", json(data));
      }
      log.info(
          "message {} of conversation {} ended: {} ({} chars)",
          stream.messageId(),
          stream.conversationId(),
          status,
          stream.text().length());
    }
  }
}
