package io.selfhosted.gateway.upstream;

import java.util.List;

/**
 * One validated chat generation, whatever API asked for it: the upstream model, the messages and
 * the sampling settings. {@link UpstreamWire} turns it into the upstream request body.
 */
public record ChatCall(
    String upstreamModel,
    List<Message> messages,
    int maxTokens,
    double temperature,
    double topP,
    List<String> stop,
    Long seed,
    Boolean ignoreEos) {

  public ChatCall {
    messages = List.copyOf(messages);
    stop = stop == null ? List.of() : List.copyOf(stop);
  }

  /** The same call for another upstream model, with another max_tokens. */
  public ChatCall withModel(String model, int maxTokens) {
    return new ChatCall(model, messages, maxTokens, temperature, topP, stop, seed, ignoreEos);
  }

  /** The same call with at most {@code cap} new tokens. */
  public ChatCall withMaxTokens(int cap) {
    return withModel(upstreamModel, Math.min(maxTokens, cap));
  }

  /** One chat message. */
  public record Message(String role, String content) {}
}
