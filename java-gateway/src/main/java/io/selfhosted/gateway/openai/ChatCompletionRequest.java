package io.selfhosted.gateway.openai;

import com.fasterxml.jackson.annotation.JsonFormat;
import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
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
 * do. Tools, the tool choice, the response format and {@code n} are checked here and passed
 * upstream as sent.
 */
@StrictJson
@TopLogprobsNeedLogprobs
@ToolChoiceFitsTools
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
    @Min(value = 1, message = "must be an integer from 1 to " + MAX_CHOICES)
        @Max(value = MAX_CHOICES, message = "must be an integer from 1 to " + MAX_CHOICES)
        @Schema(description = "how many choices to generate (1 to 16); usage counts them all")
        @Nullable
        Integer n,
    @Size(min = 1, max = MAX_TOOLS, message = "must be an array of 1 to " + MAX_TOOLS + " tools")
        @Schema(description = "functions the model may call (at most 128)")
        @Nullable
        List<@NotNull(message = "must be an object") @Valid Tool> tools,
    @JsonProperty("tool_choice")
        @Schema(
            description =
                "auto, none, required, or {\"type\": \"function\", \"function\": {\"name\":"
                    + " ...}} naming one of tools; only with tools",
            oneOf = {String.class, NamedToolChoice.class},
            implementation = Object.class)
        @Nullable
        JsonNode toolChoice,
    @JsonProperty("parallel_tool_calls")
        @Schema(description = "whether the model may call several tools in one reply")
        @Nullable
        Boolean parallelToolCalls,
    @JsonProperty("response_format") @Valid @Nullable ResponseFormat responseFormat,
    @JsonProperty("ignore_eos")
        @Schema(description = "generate max_tokens whatever the model says (vLLM's extension)")
        @Nullable
        Boolean ignoreEos) {

  /** The most choices one request may ask for. */
  public static final int MAX_CHOICES = 16;

  /** The most tools one request may offer. */
  public static final int MAX_TOOLS = 128;

  /** A function's name, as OpenAI allows it. */
  public static final java.util.regex.Pattern FUNCTION_NAME =
      java.util.regex.Pattern.compile(ChatCompletionRequest.NAME_REGEXP);

  private static final String NAME_REGEXP = "^[a-zA-Z0-9_-]{1,64}$";
  private static final String NAME_RULE = "must be 1 to 64 letters, digits, underscores or dashes";
  private static final String ROLES = "must be one of system, user, assistant, tool";

  /** One message of the conversation. */
  @JsonIgnoreProperties(ignoreUnknown = true)
  @MessageShape
  @Schema(name = "ChatMessage")
  public record ChatMessage(
      @NotNull(message = ROLES)
          @Pattern(regexp = "^(system|user|assistant|tool)$", message = ROLES)
          @Schema(allowableValues = {"system", "user", "assistant", "tool"})
          String role,
      @TextContent
          @Schema(
              description =
                  "the text; may be null or left out on an assistant message with tool_calls",
              oneOf = {String.class, TextPart[].class},
              implementation = Object.class)
          @Nullable
          JsonNode content,
      @JsonProperty("tool_calls")
          @Schema(description = "the tools an assistant message called")
          @Nullable
          List<@NotNull(message = "must be an object") @Valid ToolCall> toolCalls,
      @JsonProperty("tool_call_id")
          @Schema(description = "the call a tool message answers")
          @Nullable
          String toolCallId) {

    /** The message's text, content parts joined; null when it has none (a call of tools). */
    public @Nullable String text() {
      return content == null || content.isNull() ? null : textOf(content);
    }

    /** The message as the upstream call carries it. */
    ChatCall.Message toCall() {
      ArrayNode calls = null;
      if (toolCalls != null) {
        calls = JsonNodeFactory.instance.arrayNode();
        for (ToolCall call : toolCalls) {
          ObjectNode node = calls.addObject().put("id", call.id()).put("type", call.type());
          node.putObject("function")
              .put("name", call.function().name())
              .put("arguments", call.function().arguments());
        }
      }
      return new ChatCall.Message(role, text(), calls, toolCallId);
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

  /** A tool call in an assistant message of the history, as the reply that made it had it. */
  @JsonIgnoreProperties(ignoreUnknown = true)
  @Schema(name = "ToolCall")
  public record ToolCall(
      @NotNull(message = "is required") String id,
      @NotNull(message = "is required")
          @Pattern(regexp = "^function$", message = "must be function")
          @Schema(allowableValues = "function")
          String type,
      @NotNull(message = "is required") @Valid FunctionCall function) {}

  /** The function a tool call called. */
  @JsonIgnoreProperties(ignoreUnknown = true)
  @Schema(name = "FunctionCall")
  public record FunctionCall(
      @NotNull(message = "is required") @Pattern(regexp = NAME_REGEXP, message = NAME_RULE)
          String name,
      @NotNull(message = "is required") @Schema(description = "the arguments as JSON text")
          String arguments) {}

  /** A tool the model may call: a function. */
  @Schema(name = "Tool")
  public record Tool(
      @NotNull(message = "is required")
          @Pattern(regexp = "^function$", message = "must be function")
          @Schema(allowableValues = "function", requiredMode = Schema.RequiredMode.REQUIRED)
          String type,
      @NotNull(message = "is required") @Valid @Schema(requiredMode = Schema.RequiredMode.REQUIRED)
          FunctionDefinition function) {}

  /** A function the model may call, with its parameters' JSON Schema. */
  @Schema(name = "FunctionDefinition")
  public record FunctionDefinition(
      @NotNull(message = "is required")
          @Pattern(regexp = NAME_REGEXP, message = NAME_RULE)
          @Schema(requiredMode = Schema.RequiredMode.REQUIRED, pattern = NAME_REGEXP)
          String name,
      @Nullable String description,
      @BoundedSchema
          @Schema(
              description = "a JSON Schema object, at most 64 levels deep and 64 KiB",
              type = "object")
          @Nullable
          JsonNode parameters,
      @Nullable Boolean strict) {}

  /** {@code tool_choice} naming one function (documentation only: it is bound as JSON). */
  @Schema(name = "NamedToolChoice")
  public record NamedToolChoice(
      @Schema(allowableValues = "function", requiredMode = Schema.RequiredMode.REQUIRED)
          String type,
      @Schema(requiredMode = Schema.RequiredMode.REQUIRED) FunctionName function) {}

  /** A function's name. */
  @Schema(name = "FunctionName")
  public record FunctionName(@Schema(requiredMode = Schema.RequiredMode.REQUIRED) String name) {}

  /** The form of the reply: free text, any JSON object, or JSON that follows a schema. */
  @ResponseFormatShape
  @Schema(name = "ResponseFormat")
  public record ResponseFormat(
      @NotNull(message = "is required")
          @Pattern(
              regexp = "^(text|json_object|json_schema)$",
              message = "must be one of text, json_object, json_schema")
          @Schema(
              allowableValues = {"text", "json_object", "json_schema"},
              requiredMode = Schema.RequiredMode.REQUIRED)
          String type,
      @JsonProperty("json_schema")
          @Schema(description = "with type json_schema, and only then")
          @Valid
          @Nullable
          JsonSchemaFormat jsonSchema) {}

  /** The schema a {@code json_schema} reply follows. */
  @Schema(name = "JsonSchemaFormat")
  public record JsonSchemaFormat(
      @NotNull(message = "is required")
          @Pattern(regexp = NAME_REGEXP, message = NAME_RULE)
          @Schema(requiredMode = Schema.RequiredMode.REQUIRED, pattern = NAME_REGEXP)
          String name,
      @Nullable String description,
      @NotNull(message = "is required")
          @BoundedSchema
          @Schema(
              description = "a JSON Schema object, at most 64 levels deep and 64 KiB",
              type = "object",
              requiredMode = Schema.RequiredMode.REQUIRED)
          JsonNode schema,
      @Nullable Boolean strict) {}

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
    return messages.stream().map(ChatMessage::toCall).toList();
  }

  /** Tools, tool choice, response format and n as they go upstream: as sent, null when not. */
  public ChatCall.ReplyOptions replyOptions() {
    ArrayNode toolList = null;
    if (tools != null) {
      toolList = JsonNodeFactory.instance.arrayNode();
      for (Tool tool : tools) {
        FunctionDefinition function = tool.function();
        ObjectNode definition = toolList.addObject().put("type", tool.type()).putObject("function");
        definition.put("name", function.name());
        if (function.description() != null) {
          definition.put("description", function.description());
        }
        if (function.parameters() != null) {
          definition.set("parameters", function.parameters());
        }
        if (function.strict() != null) {
          definition.put("strict", function.strict());
        }
      }
    }
    ObjectNode format = null;
    if (responseFormat != null) {
      format = JsonNodeFactory.instance.objectNode().put("type", responseFormat.type());
      JsonSchemaFormat schema = responseFormat.jsonSchema();
      if (schema != null) {
        ObjectNode node = format.putObject("json_schema").put("name", schema.name());
        if (schema.description() != null) {
          node.put("description", schema.description());
        }
        node.set("schema", schema.schema());
        if (schema.strict() != null) {
          node.put("strict", schema.strict());
        }
      }
    }
    return new ChatCall.ReplyOptions(
        toolList,
        toolChoice == null || toolChoice.isNull() ? null : toolChoice,
        parallelToolCalls,
        format,
        n);
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
