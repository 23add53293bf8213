package io.selfhosted.gateway.models;

import io.selfhosted.gateway.models.ModelProperties.ModelProfile;
import io.selfhosted.gateway.system.ApiException;
import io.selfhosted.gateway.upstream.ChatCall;
import java.util.ArrayList;
import java.util.List;
import org.springframework.http.HttpStatus;
import org.springframework.lang.Nullable;

/**
 * Builds the upstream call of a chat from a model profile: its upstream name, its system prompt,
 * and its sampling defaults and max_tokens limit for whatever the client left out. Every API that
 * asks a model for an answer goes through here, so a profile means the same on each.
 */
public final class ChatCalls {

  private ChatCalls() {}

  /**
   * What a client may choose about the generation; null leaves it to the profile.
   *
   * @param ignoreEos vLLM's extension, honoured by our model service: generate max_tokens whatever
   *     the model says, as load tests and benchmarks need
   * @param logprobs whether the reply carries its tokens' log probabilities (OpenAI's field)
   * @param topLogprobs how many alternatives per token those carry
   */
  public record Sampling(
      @Nullable Integer maxTokens,
      @Nullable Double temperature,
      @Nullable Double topP,
      @Nullable List<String> stop,
      @Nullable Long seed,
      @Nullable Boolean ignoreEos,
      @Nullable Boolean logprobs,
      @Nullable Integer topLogprobs) {

    /** Everything left to the profile, as the product API does. */
    public static final Sampling DEFAULTS =
        new Sampling(null, null, null, null, null, null, null, null);
  }

  /**
   * The call of {@code messages} to the profile's model; the profile's system prompt goes first
   * unless the messages bring their own.
   */
  public static ChatCall of(
      ModelProfile profile, List<ChatCall.Message> messages, Sampling sampling) {
    return of(profile, messages, sampling, ChatCall.ReplyOptions.NONE);
  }

  /**
   * The same with tools, a response format or several choices, refused (400 naming the field) when
   * the profile says its model cannot serve them, before anything goes upstream.
   */
  public static ChatCall of(
      ModelProfile profile,
      List<ChatCall.Message> messages,
      Sampling sampling,
      ChatCall.ReplyOptions options) {
    if (!profile.tools() && (options.offersTools() || options.toolChoice() != null)) {
      throw unsupported(profile, "tools", "does not support tools");
    }
    if (!profile.structuredOutputs() && options.wantsStructuredOutput()) {
      throw unsupported(profile, "response_format", "does not support structured outputs");
    }
    List<ChatCall.Message> all = new ArrayList<>(messages);
    boolean hasSystem = all.stream().anyMatch(m -> "system".equals(m.role()));
    if (!hasSystem && profile.systemPrompt() != null && !profile.systemPrompt().isBlank()) {
      all.add(0, new ChatCall.Message("system", profile.systemPrompt()));
    }
    int limit = Math.max(1, profile.maxMaxTokens());
    return new ChatCall(
        ModelProfiles.upstreamModel(profile),
        all,
        Math.min(
            limit,
            sampling.maxTokens() == null ? profile.defaultMaxTokens() : sampling.maxTokens()),
        sampling.temperature() == null ? profile.defaultTemperature() : sampling.temperature(),
        sampling.topP() == null ? profile.defaultTopP() : sampling.topP(),
        sampling.stop(),
        sampling.seed(),
        sampling.ignoreEos(),
        sampling.logprobs(),
        sampling.topLogprobs(),
        options);
  }

  private static ApiException unsupported(ModelProfile profile, String param, String what) {
    return new ApiException(
        HttpStatus.BAD_REQUEST,
        "invalid_request_error",
        "unsupported_parameter",
        param,
        "the model '" + profile.name() + "' " + what);
  }
}
