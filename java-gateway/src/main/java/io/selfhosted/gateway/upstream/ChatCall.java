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

  /** One chat message. */
  public record Message(String role, String content) {}
}
