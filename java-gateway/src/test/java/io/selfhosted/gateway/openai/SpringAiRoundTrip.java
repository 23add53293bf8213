package io.selfhosted.gateway.openai;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.springframework.ai.chat.client.ChatClient;
import org.springframework.ai.chat.messages.UserMessage;
import org.springframework.ai.chat.model.ChatResponse;
import org.springframework.ai.chat.prompt.Prompt;
import org.springframework.ai.model.tool.ToolCallingManager;
import org.springframework.ai.model.tool.ToolExecutionResult;
import org.springframework.ai.openai.OpenAiChatModel;
import org.springframework.ai.openai.OpenAiChatOptions;
import org.springframework.ai.openai.api.OpenAiApi;
import org.springframework.ai.support.ToolCallbacks;
import org.springframework.ai.tool.ToolCallback;
import org.springframework.ai.tool.annotation.Tool;
import org.springframework.ai.tool.annotation.ToolParam;

/**
 * A Spring AI application's tool round trip through the gateway's /v1, as a business app would
 * write it: a {@link ChatClient} on Spring AI's OpenAI client, a {@code @Tool} method, the model
 * made to call it ({@code tool_choice} required or naming it), the method run with the model's
 * arguments, and its result sent back for the final answer.
 *
 * <p>Spring AI's own tool loop is off: it would ask again with the same {@code tool_choice}, and a
 * model held to calling a tool would call it forever. The answer is asked with {@code tool_choice}
 * none, which is Spring AI's documented user-controlled tool execution.
 */
final class SpringAiRoundTrip {

  private SpringAiRoundTrip() {}

  /** The tool the model is made to call; it remembers the cities it was asked about. */
  static final class WeatherTools {
    final List<String> cities = new CopyOnWriteArrayList<>();

    @Tool(description = "The current weather in a city")
    String currentWeather(@ToolParam(description = "the city") City city) {
      cities.add(city.name());
      return "sunny, 21 degrees Celsius in " + city;
    }
  }

  /**
   * The cities the tool knows: an enum in the tool's JSON Schema. (A free string would do for a
   * real model; the tiny demo model, held only to "a JSON string", can write one without end.)
   */
  enum City {
    Paris,
    Beijing,
    Shanghai
  }

  /** What the round trip saw: the cities the tool was called for, and the final answer. */
  record Result(List<String> cities, String answer) {}

  /** A Spring AI chat client on the gateway at {@code baseUrl} with an API key. */
  static ChatClient client(String baseUrl, String apiKey, String model) {
    OpenAiApi api = OpenAiApi.builder().baseUrl(baseUrl).apiKey(apiKey).build();
    return ChatClient.create(
        OpenAiChatModel.builder()
            .openAiApi(api)
            .defaultOptions(OpenAiChatOptions.builder().model(model).build())
            .build());
  }

  /**
   * Asks for the weather in Paris with {@code toolChoice} ({@code "required"}, or {@code
   * ToolChoiceBuilder.function("currentWeather")}), runs the tool and asks for the answer.
   */
  static Result run(ChatClient client, Object toolChoice) {
    WeatherTools tools = new WeatherTools();
    ToolCallback[] callbacks = ToolCallbacks.from(tools);
    Prompt ask =
        new Prompt(
            List.of(new UserMessage("What is the weather in Paris? Use the tool.")),
            OpenAiChatOptions.builder()
                .toolCallbacks(callbacks)
                .toolChoice(toolChoice)
                .internalToolExecutionEnabled(false)
                .build());
    ChatResponse called = client.prompt(ask).call().chatResponse();
    assertThat(called).isNotNull();
    assertThat(called.hasToolCalls()).as("the model called the tool").isTrue();

    ToolExecutionResult executed =
        ToolCallingManager.builder().build().executeToolCalls(ask, called);
    assertThat(tools.cities).as("the @Tool method ran with the model's arguments").isNotEmpty();

    Prompt answer =
        new Prompt(
            executed.conversationHistory(),
            OpenAiChatOptions.builder()
                .toolCallbacks(callbacks)
                .toolChoice(OpenAiApi.ChatCompletionRequest.ToolChoiceBuilder.NONE)
                .internalToolExecutionEnabled(false)
                .build());
    ChatResponse answered = client.prompt(answer).call().chatResponse();
    assertThat(answered.hasToolCalls()).isFalse();
    return new Result(tools.cities, answered.getResult().getOutput().getText());
  }
}
