package io.selfhosted.gateway.openai;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.selfhosted.gateway.support.FakeModelService;
import io.selfhosted.gateway.support.GatewayIntegrationTest;
import io.selfhosted.gateway.support.Json;
import java.util.ArrayList;
import java.util.List;
import mockwebserver3.MockResponse;
import mockwebserver3.RecordedRequest;
import org.junit.jupiter.api.Test;
import org.springframework.ai.chat.client.ChatClient;
import org.springframework.ai.converter.BeanOutputConverter;
import org.springframework.ai.openai.OpenAiChatOptions;
import org.springframework.ai.openai.api.OpenAiApi.ChatCompletionRequest.ToolChoiceBuilder;
import org.springframework.ai.openai.api.ResponseFormat;

/**
 * Spring AI's OpenAI client against the gateway, the model played by the fake model service: it
 * calls the tool it is offered and answers once a tool result is in the history. The same round
 * trip runs against the real model service in {@link SpringAiRealModelServiceTests}.
 */
class SpringAiClientIntegrationTests extends GatewayIntegrationTest {

  private static List<JsonNode> upstreamRequests() {
    List<JsonNode> requests = new ArrayList<>();
    for (RecordedRequest request : UPSTREAM.chatRequests()) {
      requests.add(Json.parse(request.getBody().utf8()));
    }
    return requests;
  }

  /** A model that calls the tool it is offered, then answers from the tool's result. */
  private static MockResponse toolUsingModel(RecordedRequest request) {
    JsonNode asked = Json.parse(request.getBody().utf8());
    for (JsonNode message : asked.get("messages")) {
      if (message.path("role").asText().equals("tool")) {
        return FakeModelService.answer(request, "In Paris it is ", message.get("content").asText());
      }
    }
    String tool = asked.at("/tools/0/function/name").asText();
    return FakeModelService.toolCall(request, "call_1", tool, "{\"city\":", "\"Paris\"}");
  }

  private ChatClient client() {
    return SpringAiRoundTrip.client(url(""), ADMIN_KEY, "demo-model");
  }

  @Test
  void aToolRequiredByToolChoiceIsCalledAndItsResultFedBack() {
    UPSTREAM.setDefault(SpringAiClientIntegrationTests::toolUsingModel);

    SpringAiRoundTrip.Result result = SpringAiRoundTrip.run(client(), "required");

    assertThat(result.cities()).containsExactly("Paris");
    assertThat(result.answer()).isEqualTo("In Paris it is \"sunny, 21 degrees Celsius in Paris\"");
    List<JsonNode> upstream = upstreamRequests();
    assertThat(upstream).hasSize(2);
    assertThat(upstream.get(0).get("tool_choice").asText()).isEqualTo("required");
    assertThat(upstream.get(0).at("/tools/0/function/name").asText()).isEqualTo("currentWeather");
    assertThat(upstream.get(0).at("/tools/0/function/parameters/properties/city").isObject())
        .isTrue();
    JsonNode history = upstream.get(1).get("messages");
    JsonNode call = history.get(history.size() - 2);
    assertThat(call.at("/tool_calls/0/function/arguments").asText())
        .isEqualTo("{\"city\":\"Paris\"}");
    JsonNode result2 = history.get(history.size() - 1);
    assertThat(result2.get("role").asText()).isEqualTo("tool");
    assertThat(result2.get("tool_call_id").asText()).isEqualTo("call_1");
    assertThat(upstream.get(1).get("tool_choice").asText()).isEqualTo("none");
  }

  @Test
  void aToolNamedByToolChoiceIsCalled() {
    UPSTREAM.setDefault(SpringAiClientIntegrationTests::toolUsingModel);

    SpringAiRoundTrip.Result result =
        SpringAiRoundTrip.run(client(), ToolChoiceBuilder.function("currentWeather"));

    assertThat(result.cities()).containsExactly("Paris");
    assertThat(upstreamRequests().get(0).get("tool_choice"))
        .isEqualTo(
            Json.parse("{\"type\":\"function\",\"function\":{\"name\":\"currentWeather\"}}"));
  }

  /** The structured output of the README's example. */
  record Weather(String city, double celsius) {}

  @Test
  void aJsonSchemaResponseFormatComesBackAsTheRecord() {
    UPSTREAM.setDefault(
        r -> FakeModelService.answer(r, "{\"city\":\"Paris\",", "\"celsius\":21.5}"));
    String schema = new BeanOutputConverter<>(Weather.class).getJsonSchema();

    Weather weather =
        client()
            .prompt()
            .user("The weather in Paris, as JSON")
            .options(
                OpenAiChatOptions.builder()
                    .responseFormat(new ResponseFormat(ResponseFormat.Type.JSON_SCHEMA, schema))
                    .build())
            .call()
            .entity(Weather.class);

    assertThat(weather).isEqualTo(new Weather("Paris", 21.5));
    JsonNode format = upstreamRequests().get(0).get("response_format");
    assertThat(format.get("type").asText()).isEqualTo("json_schema");
    assertThat(format.at("/json_schema/schema/properties/celsius/type").asText())
        .isEqualTo("number");
  }
}
