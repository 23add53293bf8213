package io.selfhosted.gateway.openai;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.selfhosted.gateway.auth.Caller;
import io.selfhosted.gateway.models.ModelProperties.ModelProfile;
import io.selfhosted.gateway.pipeline.Delivery;
import io.selfhosted.gateway.pipeline.Exchange;
import io.selfhosted.gateway.pipeline.Outcome;
import io.selfhosted.gateway.pipeline.StreamPipeline;
import io.selfhosted.gateway.sse.ClientSocket;
import io.selfhosted.gateway.sse.Heartbeats;
import io.selfhosted.gateway.sse.SseConnection;
import io.selfhosted.gateway.system.ApiException;
import io.selfhosted.gateway.system.JsonErrors;
import io.selfhosted.gateway.system.RequestIdFilter;
import io.selfhosted.gateway.upstream.ChatCall;
import io.selfhosted.gateway.upstream.Chunk;
import jakarta.servlet.AsyncContext;
import jakarta.servlet.AsyncEvent;
import jakarta.servlet.AsyncListener;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.springframework.http.MediaType;
import org.springframework.stereotype.Service;

/**
 * The OpenAI-compatible surface as two thin adapters onto the stream pipeline: a streamed reply
 * relays each upstream chunk as it arrives; a whole reply is gathered from the same stream. Either
 * way, a client that leaves cancels the generation upstream.
 */
@Service
public class OpenAiRelay {

  private final StreamPipeline pipeline;
  private final Heartbeats heartbeats;
  private final ObjectMapper mapper;

  OpenAiRelay(StreamPipeline pipeline, Heartbeats heartbeats, ObjectMapper mapper) {
    this.pipeline = pipeline;
    this.heartbeats = heartbeats;
    this.mapper = mapper;
  }

  /** A validated chat completion request and the call it makes upstream. */
  record Completion(ModelProfile profile, boolean stream, boolean includeUsage, ChatCall call) {}

  private Exchange exchange(Caller caller, Completion completion, HttpServletRequest request) {
    return new Exchange(
        RequestIdFilter.of(request),
        caller,
        completion.profile().name(),
        completion.stream() ? "openai_stream" : "openai",
        completion.stream(),
        completion.call(),
        RequestIdFilter.startNanos(request));
  }

  /** Relays a streaming chat completion; headers are committed once a replica accepts it. */
  void stream(
      Caller caller,
      Completion completion,
      HttpServletRequest request,
      HttpServletResponse response) {
    StreamPipeline.Run run = pipeline.admit(exchange(caller, completion, request));
    SseConnection connection = SseConnection.start(request, response, heartbeats);
    String model = completion.profile().name();
    run.start(
        new Delivery() {
          @Override
          public void open(Exchange exchange) {
            exchange.headers().forEach(connection::header);
            connection.open();
          }

          @Override
          public void chunk(Exchange exchange, Chunk chunk) {
            ObjectNode relayed = chunk.raw();
            if (!completion.includeUsage()) {
              if (chunk.usageOnly()) {
                return;
              }
              relayed.remove("usage");
            }
            relayed.put("model", model);
            connection.send("data: " + json(relayed) + "\n\n");
          }

          @Override
          public void end(Exchange exchange, Outcome outcome) {
            switch (outcome.status()) {
              case COMPLETED -> {
                connection.send("data: [DONE]\n\n");
                connection.close();
              }
              case FAILED -> {
                ApiException failure = outcome.error().withHeaders(exchange.headers());
                connection.fail(
                    failure, "data: " + json(failure.envelope()) + "\n\ndata: [DONE]\n\n");
              }
              default -> connection.close();
            }
          }
        });
    connection.onClose(() -> run.cancel("the client went away"));
  }

  /** Answers a non-streaming chat completion, gathered from the upstream stream. */
  void reply(
      Caller caller,
      Completion completion,
      HttpServletRequest request,
      HttpServletResponse response) {
    StreamPipeline.Run run = pipeline.admit(exchange(caller, completion, request));
    AsyncContext async = request.startAsync(request, response);
    async.setTimeout(0);
    WholeReply reply = new WholeReply(async, response, completion.profile().name());
    async.addListener(reply);
    run.start(reply);
    reply.onGone(() -> run.cancel("the client went away"));
    ClientSocket.of(request).ifPresent(reply::watch);
  }

  private String json(Object value) {
    try {
      return mapper.writeValueAsString(value);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException(e);
    }
  }

  /** Gathers the chunks of one whole reply and writes it, or the error, at the end. */
  private final class WholeReply implements Delivery, AsyncListener {
    private final AsyncContext async;
    private final HttpServletResponse response;
    private final String model;
    private final Map<Integer, Choice> choices = new TreeMap<>();
    private String id;
    private long created;
    private Chunk.Usage usage;
    private boolean done;
    private Runnable onGone = () -> {};
    private Runnable probe;

    WholeReply(AsyncContext async, HttpServletResponse response, String model) {
      this.async = async;
      this.response = response;
      this.model = model;
    }

    synchronized void onGone(Runnable action) {
      if (done) {
        return;
      }
      this.onGone = action;
    }

    /** Probes the client's socket while the reply is being gathered. */
    synchronized void watch(ClientSocket socket) {
      if (done) {
        return;
      }
      probe =
          () -> {
            boolean closed;
            synchronized (this) {
              // Under the lock that end() holds while completing: never read a socket that the
              // container may already be reading the next request from.
              closed = !done && socket.isClosedByClient();
            }
            if (closed) {
              gone();
            }
          };
      heartbeats.watch(probe);
    }

    @Override
    public synchronized void chunk(Exchange exchange, Chunk chunk) {
      if (id == null && chunk.raw().path("id").isTextual()) {
        id = chunk.raw().get("id").asText();
        created = chunk.raw().path("created").asLong(Instant.now().getEpochSecond());
      }
      if (chunk.hasChoice()) {
        choices.computeIfAbsent(chunk.choice(), Choice::new).add(exchange, chunk);
      }
      if (chunk.usage() != null) {
        usage = chunk.usage();
      }
    }

    @Override
    public synchronized void end(Exchange exchange, Outcome outcome) {
      if (done) {
        return;
      }
      done = true;
      if (probe != null) {
        heartbeats.unwatch(probe);
      }
      try {
        switch (outcome.status()) {
          case COMPLETED -> write(exchange, outcome);
          case FAILED ->
              JsonErrors.write(response, outcome.error().withHeaders(exchange.headers()));
          default -> {}
        }
      } catch (IOException | IllegalStateException clientGone) {
        // Nothing left to tell a client that is gone.
      } finally {
        try {
          async.complete();
        } catch (IllegalStateException alreadyCompleted) {
          // The container ended it first (client disconnect).
        }
      }
    }

    private void write(Exchange exchange, Outcome outcome) throws IOException {
      ObjectNode body = mapper.createObjectNode();
      body.put("id", id == null ? "chatcmpl-" + exchange.requestId() : id);
      body.put("object", "chat.completion");
      body.put("created", id == null ? Instant.now().getEpochSecond() : created);
      body.put("model", model);
      ArrayNode list = body.putArray("choices");
      if (choices.isEmpty()) {
        choices.put(0, new Choice(0));
      }
      for (Choice choice : choices.values()) {
        list.add(choice.json(exchange, outcome));
      }
      int prompt = usage == null ? outcome.promptTokens() : usage.promptTokens();
      int completionTokens = usage == null ? outcome.completionTokens() : usage.completionTokens();
      ObjectNode usageNode =
          body.putObject("usage")
              .put("prompt_tokens", prompt)
              .put("completion_tokens", completionTokens)
              .put("total_tokens", prompt + completionTokens);
      if (usage == null ? outcome.usageEstimated() : usage.estimated()) {
        usageNode.put("estimated", true);
      }
      exchange.headers().forEach(response::setHeader);
      response.setStatus(200);
      response.setContentType(MediaType.APPLICATION_JSON_VALUE);
      response.setCharacterEncoding(StandardCharsets.UTF_8.name());
      response.getOutputStream().write(mapper.writeValueAsBytes(body));
      response.flushBuffer();
    }

    /** One choice of the reply, gathered from its chunks: text, tool calls, logprobs, finish. */
    private final class Choice {
      private final int index;
      private final StringBuilder text = new StringBuilder();
      private final List<JsonNode> logprobs = new ArrayList<>();
      private final Map<Integer, ToolCall> toolCalls = new TreeMap<>();
      private String finishReason;

      Choice(int index) {
        this.index = index;
      }

      void add(Exchange exchange, Chunk chunk) {
        text.append(chunk.text());
        for (Chunk.ToolCallPiece piece : chunk.toolCalls()) {
          toolCalls.computeIfAbsent(piece.index(), i -> new ToolCall()).add(piece);
        }
        if (exchange.call().wantsLogprobs()) {
          logprobs.addAll(chunk.logprobs());
        }
        if (chunk.finishReason() != null) {
          finishReason = chunk.finishReason();
        }
      }

      ObjectNode json(Exchange exchange, Outcome outcome) {
        ObjectNode choice = mapper.createObjectNode().put("index", index);
        ObjectNode message = choice.putObject("message").put("role", "assistant");
        if (toolCalls.isEmpty() || !text.isEmpty()) {
          message.put("content", text.toString());
        } else {
          message.putNull("content"); // a reply that only calls tools, as OpenAI has it
        }
        if (!toolCalls.isEmpty()) {
          ArrayNode calls = message.putArray("tool_calls");
          toolCalls.values().forEach(call -> calls.add(call.json()));
        }
        if (exchange.call().wantsLogprobs()) {
          // The entries of every relayed chunk, in order: they describe the text gathered above.
          choice.putObject("logprobs").putArray("content").addAll(logprobs);
        }
        choice.put("finish_reason", finishReason == null ? outcome.finishReason() : finishReason);
        return choice;
      }
    }

    /** One tool call, joined from its streamed fragments. */
    private final class ToolCall {
      private final StringBuilder arguments = new StringBuilder();
      private String id;
      private String type;
      private String name;

      void add(Chunk.ToolCallPiece piece) {
        id = id == null ? piece.id() : id;
        type = type == null ? piece.type() : type;
        name = name == null ? piece.name() : name;
        arguments.append(piece.arguments());
      }

      ObjectNode json() {
        ObjectNode call = mapper.createObjectNode();
        call.put("id", id).put("type", type == null ? "function" : type);
        call.putObject("function").put("name", name).put("arguments", arguments.toString());
        return call;
      }
    }

    private void gone() {
      Runnable action;
      synchronized (this) {
        if (done) {
          return;
        }
        action = onGone;
      }
      action.run();
    }

    @Override
    public void onComplete(AsyncEvent event) {
      gone();
    }

    @Override
    public void onTimeout(AsyncEvent event) {
      gone();
    }

    @Override
    public void onError(AsyncEvent event) {
      gone();
    }

    @Override
    public void onStartAsync(AsyncEvent event) {}
  }
}
