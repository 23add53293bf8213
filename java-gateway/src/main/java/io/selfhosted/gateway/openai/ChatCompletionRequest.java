package io.selfhosted.gateway.openai;

import com.fasterxml.jackson.annotation.JsonFormat;
import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.databind.JsonNode;
import io.selfhosted.gateway.models.ChatCalls;
import io.selfhosted.gateway.system.StrictJson;
import io.selfhosted.gateway.upstream.ChatCall;
import io.swagger.v3.oas.annotations.media.Schema;
import jakarta.validation.Valid;
import jakarta.validation.constraints.DecimalMax;
import jakarta.validation.constraints.DecimalMin;
import jakarta.validation.constraints.Max;
import jakarta.validation.constraints.Min;
import jakarta.validation.constraints.NotEmpty;
import jakarta.validation.constraints.NotNull;
import jakarta.validation.constraints.Pattern;
import jakarta.validation.constraints.Size;
import java.util.List;
import org.springframework.lang.Nullable;

/**
 * An OpenAI chat completions request, as far as this gateway serves it. OpenAI clients send many
 * fields it does not (user, logit_bias, ...): they are ignored, as other OpenAI-compatible servers
 * do.
 */
@StrictJson
@TopLogprobsNeedLogprobs
@JsonIgnoreProperties(ignoreUnknown = true)
@Schema(name = "ChatCompletionRequest", description = "An OpenAI chat completions request")
public record ChatCompletionRequest(
    @NotNull(message = "is required") @Schema(example = "demo-model") String model,
    @NotEmpty(message = "must be a non-empty array")
        List<@NotNull(message = "must be an object") @Valid ChatMessage> messages,
    @Nullable Boolean stream,
    @JsonProperty("stream_options") @Nullable StreamOptions streamOptions,
    @JsonProperty("max_tokens") @Min(value = 1, message = "must be at least 1") @Nullable
        Integer maxTokens,
    @JsonProperty("max_completion_tokens") @Min(value = 1, message = "must be at least 1") @Nullable
        Integer maxCompletionTokens,
    @DecimalMin(value = "0", message = "must be a number from 0 to 2")
        @DecimalMax(value = "2", message = "must be a number from 0 to 2")
        @Nullable
        Double temperature,
    @JsonProperty("top_p")
        @DecimalMin(value = "0", message = "must be a number from 0 to 1")
        @DecimalMax(value = "1", message = "must be a number from 0 to 1")
        @Nullable
        Double topP,
    // One string is a list of one, as in OpenAI's API.
    @JsonFormat(with = JsonFormat.Feature.ACCEPT_SINGLE_VALUE_AS_ARRAY)
        @Size(max = 4, message = "must be a string or an array of up to 4 strings")
        @Schema(
            description = "a string or up to 4 strings",
            oneOf = {String.class, String[].class},
            implementation = Object.class)
        @Nullable
        List<@NotNull(message = "must be a string") String> stop,
    @Schema(description = "any 64-bit integer") @Nullable Long seed,
    @Schema(
            description =
                "return the log probabilities of the reply's tokens, in choices[].logprobs.content"
                    + " (in each streamed chunk, or in the whole reply)")
        @Nullable
        Boolean logprobs,
    @JsonProperty("top_logprobs")
        @Min(value = 0, message = "must be an integer from 0 to 20")
        @Max(value = 20, message = "must be an integer from 0 to 20")
        @Schema(
            description =
                "how many of the most likely tokens each position lists with its log probability;"
                    + " needs logprobs: true")
        @Nullable
        Integer topLogprobs,
    @Min(value = 1, message = "must be 1: one choice per request")
        @Max(value = 1, message = "must be 1: one choice per request")
        @Nullable
        Integer n,
    @JsonProperty("ignore_eos")
        @Schema(description = "generate max_tokens whatever the model says (vLLM's extension)")
        @Nullable
        Boolean ignoreEos) {

  private static final String ROLES = "must be one of system, user, assistant";

  /** One message of the conversation. */
  @JsonIgnoreProperties(ignoreUnknown = true)
  @Schema(name = "ChatMessage")
  public record ChatMessage(
      @NotNull(message = ROLES)
          @Pattern(regexp = "^(system|user|assistant)$", message = ROLES)
          @Schema(allowableValues = {"system", "user", "assistant"})
          String role,
      @NotNull(message = TextContent.MESSAGE)
          @TextContent
          @Schema(
              requiredMode = Schema.RequiredMode.REQUIRED,
              oneOf = {String.class, TextPart[].class},
              implementation = Object.class)
          JsonNode content) {

    /** The message's text, content parts joined. */
    public String text() {
      return textOf(content);
    }

    /** The text of valid content, parts joined; null when the content is not valid. */
    static @Nullable String textOf(@Nullable JsonNode content) {
      if (content == null) {
        return null;
      }
      if (content.isTextual()) {
        return content.asText();
      }
      if (!content.isArray()) {
        return null;
      }
      StringBuilder text = new StringBuilder();
      for (JsonNode part : content) {
        if (!"text".equals(part.path("type").textValue()) || !part.path("text").isTextual()) {
          return null;
        }
        text.append(part.get("text").asText());
      }
      return text.toString();
    }
  }

  /** One of OpenAI's content parts; only text parts mean something to a text model. */
  @Schema(name = "TextContentPart")
  public record TextPart(
      @Schema(requiredMode = Schema.RequiredMode.REQUIRED, allowableValues = "text") String type,
      @Schema(requiredMode = Schema.RequiredMode.REQUIRED) String text) {}

  /** Options of a streamed reply. */
  @JsonIgnoreProperties(ignoreUnknown = true)
  @Schema(name = "StreamOptions")
  public record StreamOptions(@JsonProperty("include_usage") @Nullable Boolean includeUsage) {}

  /** Whether the reply is streamed as Server-Sent Events. */
  public boolean streamed() {
    return Boolean.TRUE.equals(stream);
  }

  /** Whether a streamed reply ends with a usage chunk. */
  public boolean includeUsage() {
    return streamOptions != null && Boolean.TRUE.equals(streamOptions.includeUsage());
  }

  /** The messages as the upstream call takes them, content parts joined into one text. */
  public List<ChatCall.Message> chatMessages() {
    return messages.stream().map(m -> new ChatCall.Message(m.role(), m.text())).toList();
  }

  /** The client's sampling choices; max_completion_tokens wins over the older max_tokens. */
  public ChatCalls.Sampling sampling() {
    return new ChatCalls.Sampling(
        maxCompletionTokens != null ? maxCompletionTokens : maxTokens,
        temperature,
        topP,
        stop,
        seed,
        ignoreEos,
        logprobs,
        topLogprobs);
  }
}
