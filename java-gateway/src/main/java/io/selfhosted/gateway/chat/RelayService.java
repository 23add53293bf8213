package io.selfhosted.gateway.chat;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.selfhosted.gateway.chat.ChatRequests.Completion;
import io.selfhosted.gateway.chat.ChatRequests.HistoryEntry;
import io.selfhosted.gateway.chat.ChatRequests.Query;
import io.selfhosted.gateway.system.ApiException;
import io.selfhosted.gateway.system.RequestIdFilter;
import io.selfhosted.gateway.upstream.UpstreamError;
import io.selfhosted.gateway.upstream.UpstreamListener;
import io.selfhosted.gateway.upstream.UpstreamPool;
import io.selfhosted.gateway.upstream.UpstreamPool.StreamHandle;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.dao.DataAccessException;
import org.springframework.stereotype.Service;

/**
 * Relays upstream chunks to clients: as OpenAI chunks on /v1 (client disconnect cancels at once),
 * and as resumable product events on /api (generation outlives a dropped browser for a grace
 * period). Every token is written and flushed the moment it arrives.
 */
@Service
public class RelayService {

  private static final Logger log = LoggerFactory.getLogger(RelayService.class);

  private final UpstreamPool pool;
  private final StreamRegistry registry;
  private final ConversationRepository conversations;
  private final ChatRequests requests;
  private final Heartbeats heartbeats;
  private final StreamMetrics metrics;
  private final ObjectMapper mapper;
  private final Map<String, StreamHandle> running = new ConcurrentHashMap<>();

  RelayService(
      UpstreamPool pool,
      StreamRegistry registry,
      ConversationRepository conversations,
      ChatRequests requests,
      Heartbeats heartbeats,
      StreamMetrics metrics,
      ObjectMapper mapper) {
    this.pool = pool;
    this.registry = registry;
    this.conversations = conversations;
    this.requests = requests;
    this.heartbeats = heartbeats;
    this.metrics = metrics;
    this.mapper = mapper;
  }

  // ---- OpenAI-compatible surface ---------------------------------------------------------------

  /** Relays a streaming chat completion; headers are committed once a replica accepts it. */
  void streamCompletion(
      Completion completion, HttpServletRequest request, HttpServletResponse response) {
    long requestNanos = RequestIdFilter.startNanos(request);
    String requestId = RequestIdFilter.of(request);
    SseConnection connection = SseConnection.start(request, response, heartbeats);
    AtomicBoolean counted = new AtomicBoolean(true);
    metrics.started();
    long upstreamSentNanos = System.nanoTime();
    StreamHandle[] handleRef = new StreamHandle[1];
    UpstreamListener listener =
        new UpstreamListener() {
          private boolean first = true;

          @Override
          public void onOpen() {
            connection.open();
          }

          @Override
          public void onChunk(JsonNode chunk) {
            long arrived = System.nanoTime();
            ObjectNode relayed = (ObjectNode) chunk;
            boolean usageOnly = chunk.path("choices").isEmpty() && chunk.hasNonNull("usage");
            if (!completion.includeUsage()) {
              if (usageOnly) {
                return;
              }
              relayed.remove("usage");
            }
            relayed.put("model", completion.profile().name());
            if (connection.send("data: " + json(relayed) + "\n\n") && first && !usageOnly) {
              first = false;
              metrics.firstToken(requestNanos, upstreamSentNanos, arrived, System.nanoTime());
            }
          }

          @Override
          public void onComplete() {
            connection.send("data: [DONE]\n\n");
            connection.close();
            ended(counted, "openai", "complete");
            log.info("request {} stream complete via {}", requestId, handleReplica(handleRef));
          }

          @Override
          public void onError(UpstreamError error, boolean afterFirstChunk) {
            ApiException failure = error.toApiException();
            connection.fail(failure, "data: " + json(failure.envelope()) + "\n\ndata: [DONE]\n\n");
            ended(counted, "openai", "error");
            log.info(
                "request {} stream failed ({}, {})",
                requestId,
                error.kind(),
                afterFirstChunk ? "after the first token" : "before the first token");
          }
        };
    StreamHandle handle = pool.stream(completion.upstreamBody(), requestId, listener);
    handleRef[0] = handle;
    connection.onClose(
        () -> {
          if (!handle.isFinished()) {
            log.info("request {} client went away; cancelling the upstream call", requestId);
            handle.cancel();
            ended(counted, "openai", "client_gone");
          }
        });
  }

  private static String handleReplica(StreamHandle[] handleRef) {
    StreamHandle handle = handleRef[0];
    return handle == null ? "?" : handle.replica();
  }

  private void ended(AtomicBoolean counted, String surface, String outcome) {
    if (counted.compareAndSet(true, false)) {
      metrics.ended(surface, outcome);
    }
  }

  // ---- product surface -------------------------------------------------------------------------

  /** Stores the user's turn, starts generating the answer, and returns its resumable stream. */
  GenerationStream startTurn(String conversationId, Query query, HttpServletRequest request) {
    long requestNanos = RequestIdFilter.startNanos(request);
    String requestId = RequestIdFilter.of(request);
    List<HistoryEntry> history =
        conversations.listMessages(conversationId).stream()
            .filter(m -> !m.content().isBlank())
            .map(m -> new HistoryEntry(m.role(), m.content()))
            .toList();
    String model = query.profile().name();
    conversations.insertMessage(
        conversationId, "user", query.query(), ConversationRepository.COMPLETE, model);
    var assistant =
        conversations.insertMessage(
            conversationId, "assistant", "", ConversationRepository.STREAMING, model);
    GenerationStream stream = registry.create(assistant.id(), conversationId);
    stream.onAbandoned(
        () -> {
          log.info(
              "no client for message {} within the grace period; cancelling", stream.messageId());
          cancel(stream);
        });
    metrics.started();
    ObjectNode body = requests.productBody(query.profile(), history, query.query());
    long upstreamSentNanos = System.nanoTime();
    ProductListener listener = new ProductListener(stream, requestNanos, upstreamSentNanos);
    running.put(stream.messageId(), pool.stream(body, requestId, listener));
    if (stream.isEnding()) {
      running.remove(stream.messageId());
    }
    stream.scheduleGraceIfUnattended();
    return stream;
  }

  /** Attaches a client to a product stream, replaying everything after {@code lastEventId}. */
  void attach(
      GenerationStream stream,
      long lastEventId,
      HttpServletRequest request,
      HttpServletResponse response) {
    SseConnection connection = SseConnection.start(request, response, heartbeats);
    connection.header("X-Message-Id", stream.messageId());
    connection.header("X-Conversation-Id", stream.conversationId());
    connection.open();
    connection.onClose(() -> stream.detach(connection));
    stream.attach(lastEventId, connection);
  }

  /** Stops a generation; the partial answer is stored as cancelled. Idempotent. */
  void cancel(GenerationStream stream) {
    if (!stream.beginEnd()) {
      return;
    }
    StreamHandle handle = running.remove(stream.messageId());
    if (handle != null) {
      handle.cancel();
    }
    finish(stream, ConversationRepository.CANCELLED, "cancelled", null, null);
  }

  /** The text generated so far for a message still streaming, if this gateway holds it. */
  String liveText(String messageId) {
    return registry.find(messageId).map(GenerationStream::text).orElse(null);
  }

  private void finish(
      GenerationStream stream,
      String status,
      String finishReason,
      JsonNode usage,
      UpstreamError error) {
    running.remove(stream.messageId());
    // Stored before the final event goes out, so a client that saw it reads the stored answer.
    try {
      conversations.finishMessage(
          stream.messageId(),
          stream.text(),
          status,
          finishReason,
          usage == null ? null : intOrNull(usage.get("prompt_tokens")),
          usage == null ? null : intOrNull(usage.get("completion_tokens")));
    } catch (DataAccessException e) {
      log.error("could not store message {}", stream.messageId(), e);
    }
    ObjectNode data = mapper.createObjectNode().put("message_id", stream.messageId());
    if (error != null) {
      ApiException failure = error.toApiException();
      data.putObject("error")
          .put("message", failure.getMessage())
          .put("type", failure.type())
          .put("code", failure.code());
      stream.end("error", json(data));
    } else {
      data.put("finish_reason", finishReason);
      data.set("usage", usage == null ? mapper.createObjectNode() : usage);
      data.put("degraded", false);
      stream.end("finish", json(data));
    }
    metrics.ended("product", status);
    log.info(
        "message {} of conversation {} ended: {} ({} chars)",
        stream.messageId(),
        stream.conversationId(),
        status,
        stream.text().length());
  }

  private static Integer intOrNull(JsonNode node) {
    return node != null && node.canConvertToInt() ? node.asInt() : null;
  }

  private String json(Object value) {
    try {
      return mapper.writeValueAsString(value);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException(e);
    }
  }

  /** Turns upstream chunks into product events of one generation. */
  private final class ProductListener implements UpstreamListener {
    private final GenerationStream stream;
    private final long requestNanos;
    private final long upstreamSentNanos;
    private boolean first = true;
    private String finishReason;
    private JsonNode usage;

    ProductListener(GenerationStream stream, long requestNanos, long upstreamSentNanos) {
      this.stream = stream;
      this.requestNanos = requestNanos;
      this.upstreamSentNanos = upstreamSentNanos;
    }

    @Override
    public void onChunk(JsonNode chunk) {
      long arrived = System.nanoTime();
      if (chunk.hasNonNull("usage")) {
        usage = chunk.get("usage");
      }
      JsonNode choice = chunk.path("choices").path(0);
      if (choice.hasNonNull("finish_reason")) {
        finishReason = choice.get("finish_reason").asText();
      }
      JsonNode content = choice.path("delta").path("content");
      if (content.isTextual() && !content.asText().isEmpty()) {
        String delta = content.asText();
        ObjectNode data =
            mapper.createObjectNode().put("text", delta).put("message_id", stream.messageId());
        stream.appendText(delta, json(data));
        if (first) {
          first = false;
          metrics.firstToken(requestNanos, upstreamSentNanos, arrived, System.nanoTime());
        }
      }
    }

    @Override
    public void onComplete() {
      if (stream.beginEnd()) {
        finish(
            stream,
            ConversationRepository.COMPLETE,
            finishReason == null ? "stop" : finishReason,
            usage,
            null);
      }
    }

    @Override
    public void onError(UpstreamError error, boolean afterFirstChunk) {
      if (stream.beginEnd()) {
        finish(stream, ConversationRepository.FAILED, "error", usage, error);
      }
    }
  }
}
