package io.selfhosted.gateway.upstream;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.List;
import org.springframework.lang.Nullable;

/**
 * One validated chat generation, whatever API asked for it: the upstream model, the messages and
 * the sampling settings. {@link UpstreamWire} turns it into the upstream request body.
 *
 * @param logprobs whether the reply carries the log probabilities of its tokens; null: not asked
 * @param topLogprobs how many alternatives per token those carry (0 to 20); null: not asked
 * @param options tools, response format and choices, passed upstream as the client sent them
 */
public record ChatCall(
    String upstreamModel,
    List<Message> messages,
    int maxTokens,
    double temperature,
    double topP,
    List<String> stop,
    Long seed,
    Boolean ignoreEos,
    @Nullable Boolean logprobs,
    @Nullable Integer topLogprobs,
    ReplyOptions options) {

  public ChatCall {
    messages = List.copyOf(messages);
    stop = stop == null ? List.of() : List.copyOf(stop);
    options = options == null ? ReplyOptions.NONE : options;
  }

  /** A call that asks for no log probabilities, tools or extra choices. */
  public ChatCall(
      String upstreamModel,
      List<Message> messages,
      int maxTokens,
      double temperature,
      double topP,
      List<String> stop,
      Long seed,
      Boolean ignoreEos) {
    this(
        upstreamModel,
        messages,
        maxTokens,
        temperature,
        topP,
        stop,
        seed,
        ignoreEos,
        null,
        null,
        ReplyOptions.NONE);
  }

  /** The same call for another upstream model, with another max_tokens. */
  public ChatCall withModel(String model, int maxTokens) {
    return new ChatCall(
        model,
        messages,
        maxTokens,
        temperature,
        topP,
        stop,
        seed,
        ignoreEos,
        logprobs,
        topLogprobs,
        options);
  }

  /** The same call with at most {@code cap} new tokens. */
  public ChatCall withMaxTokens(int cap) {
    return withModel(upstreamModel, Math.min(maxTokens, cap));
  }

  /** Whether the client asked for the log probabilities of the reply's tokens. */
  public boolean wantsLogprobs() {
    return Boolean.TRUE.equals(logprobs);
  }

  /** How many choices the reply has (OpenAI's {@code n}); each may use up to max_tokens. */
  public int choices() {
    return options.n() == null ? 1 : options.n();
  }

  /**
   * One chat message.
   *
   * @param content the text; null only for an assistant message that calls tools
   * @param toolCalls an assistant message's tool calls, as OpenAI shapes them; null: none
   * @param toolCallId the call a {@code tool} message answers; null on other roles
   */
  public record Message(
      String role,
      @Nullable String content,
      @Nullable JsonNode toolCalls,
      @Nullable String toolCallId) {

    public Message(String role, String content) {
      this(role, content, null, null);
    }
  }

  /**
   * What the client asked of the reply beyond sampling, in OpenAI's shapes, relayed upstream
   * unchanged (to our model service and peer engines alike); a null field was not sent.
   *
   * @param tools the functions the model may call ({@code tools})
   * @param toolChoice {@code auto}, {@code none}, {@code required} or one named function
   * @param responseFormat {@code text}, {@code json_object} or {@code json_schema}
   * @param n how many choices to generate
   */
  public record ReplyOptions(
      @Nullable JsonNode tools,
      @Nullable JsonNode toolChoice,
      @Nullable Boolean parallelToolCalls,
      @Nullable JsonNode responseFormat,
      @Nullable Integer n) {

    /** Nothing asked: one plain text choice. */
    public static final ReplyOptions NONE = new ReplyOptions(null, null, null, null, null);

    /** Whether the call offers the model tools. */
    public boolean offersTools() {
      return tools != null && !tools.isEmpty();
    }

    /** Whether the reply must be JSON ({@code json_object} or {@code json_schema}). */
    public boolean wantsStructuredOutput() {
      String type = responseFormat == null ? null : responseFormat.path("type").textValue();
      return type != null && !type.equals("text");
    }
  }
}
