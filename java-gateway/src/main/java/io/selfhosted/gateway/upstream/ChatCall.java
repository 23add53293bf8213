package io.selfhosted.gateway.upstream;

import java.util.List;
import org.springframework.lang.Nullable;

/**
 * One validated chat generation, whatever API asked for it: the upstream model, the messages and
 * the sampling settings. {@link UpstreamWire} turns it into the upstream request body.
 *
 * @param logprobs whether the reply carries the log probabilities of its tokens; null: not asked
 * @param topLogprobs how many alternatives per token those carry (0 to 20); null: not asked
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
    @Nullable Integer topLogprobs) {

  public ChatCall {
    messages = List.copyOf(messages);
    stop = stop == null ? List.of() : List.copyOf(stop);
  }

  /** A call that asks for no log probabilities. */
  public ChatCall(
      String upstreamModel,
      List<Message> messages,
      int maxTokens,
      double temperature,
      double topP,
      List<String> stop,
      Long seed,
      Boolean ignoreEos) {
    this(upstreamModel, messages, maxTokens, temperature, topP, stop, seed, ignoreEos, null, null);
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
        topLogprobs);
  }

  /** The same call with at most {@code cap} new tokens. */
  public ChatCall withMaxTokens(int cap) {
    return withModel(upstreamModel, Math.min(maxTokens, cap));
  }

  /** Whether the client asked for the log probabilities of the reply's tokens. */
  public boolean wantsLogprobs() {
    return Boolean.TRUE.equals(logprobs);
  }

  /** One chat message. */
  public record Message(String role, String content) {}
}
