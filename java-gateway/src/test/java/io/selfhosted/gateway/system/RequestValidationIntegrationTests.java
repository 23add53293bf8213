package io.selfhosted.gateway.system;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.selfhosted.gateway.support.FakeModelService.LiveStream;
import io.selfhosted.gateway.support.GatewayIntegrationTest;
import io.selfhosted.gateway.support.Json;
import io.selfhosted.gateway.support.SseClient;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.stream.Stream;
import okhttp3.MediaType;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.MethodSource;

/** Bad inputs get a clear error in the shared envelope, and none of them reaches the model. */
class RequestValidationIntegrationTests extends GatewayIntegrationTest {

  private static final MediaType JSON = MediaType.get("application/json");

  @AfterEach
  void nothingReachedTheModelService() {
    assertThat(UPSTREAM.chatRequestCount()).isZero();
  }

  private JsonNode expectError(Response response, int status) throws Exception {
    try (response) {
      assertThat(response.code()).isEqualTo(status);
      assertThat(response.header("Content-Type")).startsWith("application/json");
      JsonNode error = Json.parse(response.body().string()).get("error");
      assertThat(error).isNotNull();
      assertThat(error.get("message").asText()).isNotBlank();
      assertThat(error.has("type")).isTrue();
      assertThat(error.has("param")).isTrue();
      assertThat(error.has("code")).isTrue();
      return error;
    }
  }

  @ParameterizedTest
  @CsvSource(
      delimiter = '|',
      value = {
        "/v1/chat/completions | {\"model\": \"demo-model\", \"messages\": [",
        "/api/chat/messages   | {\"model\": \"demo-model\" \"query\": \"hi\"}",
        "/api/chat/messages   | not json at all",
      })
  void refusesMalformedJson(String path, String body) throws Exception {
    expectError(post(path.trim(), body), 400);
  }

  @ParameterizedTest
  @CsvSource(
      delimiter = '|',
      value = {
        "/v1/chat/completions | {\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]} | model",
        "/v1/chat/completions | {\"model\":\"demo-model\"} | messages",
        "/v1/chat/completions | {\"model\":\"demo-model\",\"messages\":[]} | messages",
        "/v1/chat/completions | {\"model\":42,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]} | model",
        "/v1/chat/completions | {\"model\":\"demo-model\",\"messages\":[{\"role\":\"wizard\",\"content\":\"hi\"}]} | messages[0].role",
        "/v1/chat/completions | {\"model\":\"demo-model\",\"messages\":[{\"role\":\"user\",\"content\":7}]} | messages[0].content",
        "/v1/chat/completions | {\"model\":\"demo-model\",\"stream\":\"yes\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]} | stream",
        "/v1/chat/completions | {\"model\":\"demo-model\",\"temperature\":\"hot\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]} | temperature",
        "/v1/chat/completions | {\"model\":\"demo-model\",\"max_tokens\":-5,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]} | max_tokens",
        "/v1/chat/completions | {\"model\":\"demo-model\",\"top_p\":3,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]} | top_p",
        "/v1/chat/completions | {\"model\":\"demo-model\",\"seed\":1180591620717411303424,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]} | seed",
        "/v1/chat/completions | {\"model\":\"demo-model\",\"seed\":1.5,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]} | seed",
        "/api/chat/messages   | {\"model\":\"demo-model\"} | query",
        "/api/chat/messages   | {\"model\":\"demo-model\",\"query\":[\"hi\"]} | query",
        "/api/chat/messages   | {\"model\":\"demo-model\",\"query\":\"   \"} | query",
        "/api/chat/messages   | {\"model\":\"demo-model\",\"query\":\"hi\",\"conversationId\":5} | conversationId",
      })
  void namesTheFieldThatIsMissingOrOfTheWrongType(String path, String body, String param)
      throws Exception {
    JsonNode error = expectError(post(path.trim(), body), 400);
    assertThat(error.get("param").asText()).isEqualTo(param.trim());
  }

  /** Values Jackson would coerce or that break a constraint: each names its field's wire path. */
  @ParameterizedTest
  @CsvSource(
      delimiter = '|',
      value = {
        "{\"max_tokens\":\"5\"} | max_tokens | max_tokens must be a 32-bit integer",
        "{\"max_tokens\":5.0} | max_tokens | max_tokens must be a 32-bit integer",
        "{\"max_tokens\":0} | max_tokens | max_tokens must be at least 1",
        "{\"max_tokens\":99999999999} | max_tokens | max_tokens must be a 32-bit integer",
        "{\"max_completion_tokens\":true} | max_completion_tokens | max_completion_tokens must be"
            + " a 32-bit integer",
        "{\"n\":1.5} | n | n must be a 32-bit integer",
        "{\"n\":17} | n | n must be an integer from 1 to 16",
        "{\"n\":0} | n | n must be an integer from 1 to 16",
        "{\"n\":\"1\"} | n | n must be a 32-bit integer",
        "{\"logprobs\":\"yes\"} | logprobs | logprobs must be a boolean",
        "{\"logprobs\":1} | logprobs | logprobs must be a boolean",
        "{\"logprobs\":true,\"top_logprobs\":21} | top_logprobs | top_logprobs must be an"
            + " integer from 0 to 20",
        "{\"logprobs\":true,\"top_logprobs\":-1} | top_logprobs | top_logprobs must be an"
            + " integer from 0 to 20",
        "{\"logprobs\":true,\"top_logprobs\":1.5} | top_logprobs | top_logprobs must be a"
            + " 32-bit integer",
        "{\"logprobs\":true,\"top_logprobs\":\"3\"} | top_logprobs | top_logprobs must be a"
            + " 32-bit integer",
        "{\"top_logprobs\":3} | top_logprobs | top_logprobs requires logprobs to be true",
        "{\"logprobs\":false,\"top_logprobs\":0} | top_logprobs | top_logprobs requires"
            + " logprobs to be true",
        "{\"logprobs\":null,\"top_logprobs\":5} | top_logprobs | top_logprobs requires"
            + " logprobs to be true",
        "{\"logprobs\":true,\"top_logprobs\":5,\"n\":17} | n | n must be an integer from 1"
            + " to 16",
        "{\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]} | stop | stop must be a string or an"
            + " array of up to 4 strings",
        "{\"stop\":[\"a\",5]} | stop[1] | stop[1] must be a string",
        "{\"stop\":[\"a\",null]} | stop[1] | stop[1] must be a string",
        "{\"model\":true} | model | model must be a string",
        "{\"temperature\":\"0.5\"} | temperature | temperature must be a number",
        "{\"temperature\":2.5} | temperature | temperature must be a number from 0 to 2",
        "{\"temperature\":1e400} | temperature | temperature must be a number from 0 to 2",
        "{\"top_p\":-0.1} | top_p | top_p must be a number from 0 to 1",
        "{\"stream\":1} | stream | stream must be a boolean",
        "{\"stream\":\"true\"} | stream | stream must be a boolean",
        "{\"stream_options\":\"yes\"} | stream_options | stream_options must be an object",
        "{\"stream_options\":{\"include_usage\":\"yes\"}} | stream_options.include_usage |"
            + " stream_options.include_usage must be a boolean",
        "{\"ignore_eos\":0} | ignore_eos | ignore_eos must be a boolean",
        "{\"seed\":\"5\"} | seed | seed must be a 64-bit integer",
        "{\"messages\":{}} | messages | messages must be an array",
        "{\"messages\":[\"hi\"]} | messages[0] | messages[0] must be an object",
        "{\"messages\":[null]} | messages[0] | messages[0] must be an object",
        "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},{\"content\":\"x\"}]} |"
            + " messages[1].role | messages[1].role must be one of system, user, assistant, tool",
        "{\"messages\":[{\"role\":\"user\",\"content\":null}]} | messages[0].content |"
            + " messages[0].content must be a string or an array of text content parts",
        "{\"messages\":[{\"role\":\"user\",\"content\":{}}]} | messages[0].content |"
            + " messages[0].content must be a string or an array of text content parts",
        "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}]} |"
            + " messages[0].content | messages[0].content must be a string or an array of text"
            + " content parts",
        "{\"messages\":[{\"role\":\"user\",\"content\":[\"hi\"]}]} | messages[0].content |"
            + " messages[0].content must be a string or an array of text content parts",
      })
  void refusesWhatJacksonWouldCoerceAndNamesTheWirePath(String change, String param, String message)
      throws Exception {
    JsonNode body =
        Json.parse(
            "{\"model\":\"demo-model\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    Json.parse(change.trim())
        .fields()
        .forEachRemaining(f -> ((ObjectNode) body).set(f.getKey(), f.getValue()));
    JsonNode error = expectError(post("/v1/chat/completions", body.toString()), 400);
    assertThat(error.get("param").asText()).isEqualTo(param.trim());
    assertThat(error.get("message").asText()).isEqualTo(message.trim());
    assertThat(error.get("code").asText()).isEqualTo("invalid_request");
  }

  private static final String TOOL =
      "{'type':'function','function':{'name':'get_weather','parameters':{'type':'object'}}}";

  private static Arguments bad(String change, String param, String message) {
    return Arguments.of(change.replace('\'', '"'), param, message);
  }

  /** Tools, tool choices, response formats and tool messages that break OpenAI's rules. */
  static Stream<Arguments> badToolsFormatsAndToolMessages() {
    return Stream.of(
        bad("{'tools':[]}", "tools", "tools must be an array of 1 to 128 tools"),
        bad("{'tools':'get_weather'}", "tools", "tools must be an array"),
        bad("{'tools':[null]}", "tools[0]", "tools[0] must be an object"),
        bad(
            "{'tools':[{'type':'retrieval','function':{'name':'a'}}]}",
            "tools[0].type",
            "tools[0].type must be function"),
        bad(
            "{'tools':[{'type':'function'}]}",
            "tools[0].function",
            "tools[0].function is required"),
        bad(
            "{'tools':[{'type':'function','function':{'name':'get weather'}}]}",
            "tools[0].function.name",
            "tools[0].function.name must be 1 to 64 letters, digits, underscores or dashes"),
        bad(
            "{'tools':[{'type':'function','function':{'name':'" + "a".repeat(65) + "'}}]}",
            "tools[0].function.name",
            "tools[0].function.name must be 1 to 64 letters, digits, underscores or dashes"),
        bad(
            "{'tools':[{'type':'function','function':{'description':'x'}}]}",
            "tools[0].function.name",
            "tools[0].function.name is required"),
        bad(
            "{'tools':[{'type':'function','function':{'name':'a','parameters':'x'}}]}",
            "tools[0].function.parameters",
            "tools[0].function.parameters must be a JSON Schema object"),
        bad(
            "{'tools':[{'type':'function','function':{'name':'a','parameters':null}}]}",
            "tools[0].function.parameters",
            "tools[0].function.parameters must be a JSON Schema object"),
        bad(
            "{'tools':[{'type':'function','function':{'name':'a','colour':'red'}}]}",
            "tools[0].function.colour",
            "unknown field tools[0].function.colour; allowed: description, name, parameters,"
                + " strict"),
        bad(
            "{'tools':[{'type':'function','function':{'name':'a','strict':'yes'}}]}",
            "tools[0].function.strict",
            "tools[0].function.strict must be a boolean"),
        bad("{'tool_choice':'auto'}", "tool_choice", "tool_choice requires tools"),
        bad("{'tool_choice':'none'}", "tool_choice", "tool_choice requires tools"),
        bad(
            "{'tool_choice':{'type':'function','function':{'name':'get_weather'}}}",
            "tool_choice",
            "tool_choice requires tools"),
        bad(
            "{'tools':[" + TOOL + "],'tool_choice':'sometimes'}",
            "tool_choice",
            "tool_choice must be auto, none, required, or a named function: type function with"
                + " function.name"),
        bad(
            "{'tools':[" + TOOL + "],'tool_choice':5}",
            "tool_choice",
            "tool_choice must be auto, none, required, or a named function: type function with"
                + " function.name"),
        bad(
            "{'tools':[" + TOOL + "],'tool_choice':{'type':'function'}}",
            "tool_choice",
            "tool_choice must be auto, none, required, or a named function: type function with"
                + " function.name"),
        bad(
            "{'tools':[" + TOOL + "],'tool_choice':{'type':'function','function':{'name':'nope'}}}",
            "tool_choice",
            "tool_choice names the function 'nope', which is not in tools"),
        bad(
            "{'tools':[" + TOOL + "],'tool_choice':{'type':'function','function':{'name':'a b'}}}",
            "tool_choice",
            "tool_choice names a function that is not in tools"),
        bad(
            "{'parallel_tool_calls':'yes'}",
            "parallel_tool_calls",
            "parallel_tool_calls must be a boolean"),
        bad("{'response_format':'json'}", "response_format", "response_format must be an object"),
        bad(
            "{'response_format':{'type':'xml'}}",
            "response_format.type",
            "response_format.type must be one of text, json_object, json_schema"),
        bad("{'response_format':{}}", "response_format.type", "response_format.type is required"),
        bad(
            "{'response_format':{'type':'json_schema'}}",
            "response_format.json_schema",
            "response_format.json_schema is required when type is json_schema"),
        bad(
            "{'response_format':{'type':'json_object','json_schema':{'name':'a','schema':{}}}}",
            "response_format.json_schema",
            "response_format.json_schema is only allowed when type is json_schema"),
        bad(
            "{'response_format':{'type':'json_schema','json_schema':{'name':'a b','schema':{}}}}",
            "response_format.json_schema.name",
            "response_format.json_schema.name must be 1 to 64 letters, digits, underscores or"
                + " dashes"),
        bad(
            "{'response_format':{'type':'json_schema','json_schema':{'name':'a'}}}",
            "response_format.json_schema.schema",
            "response_format.json_schema.schema is required"),
        bad(
            "{'response_format':{'type':'json_schema','json_schema':{'name':'a','schema':[1]}}}",
            "response_format.json_schema.schema",
            "response_format.json_schema.schema must be a JSON Schema object"),
        bad(
            "{'response_format':{'type':'json_schema','json_schema':{'schema':{}}}}",
            "response_format.json_schema.name",
            "response_format.json_schema.name is required"),
        bad(
            "{'messages':[{'role':'tool','content':'sunny'}]}",
            "messages[0].tool_call_id",
            "messages[0].tool_call_id is required on tool messages"),
        bad(
            "{'messages':[{'role':'tool','tool_call_id':'c1'}]}",
            "messages[0].content",
            "messages[0].content must be a string or an array of text content parts"),
        bad(
            "{'messages':[{'role':'user','content':'hi','tool_call_id':'c1'}]}",
            "messages[0].tool_call_id",
            "messages[0].tool_call_id is only allowed on tool messages"),
        bad(
            "{'messages':[{'role':'user','content':'hi','tool_calls':[]}]}",
            "messages[0].tool_calls",
            "messages[0].tool_calls is only allowed on assistant messages"),
        bad(
            "{'messages':[{'role':'assistant'}]}",
            "messages[0].content",
            "messages[0].content must be a string or an array of text content parts"),
        bad(
            "{'messages':[{'role':'assistant','content':null,'tool_calls':[]}]}",
            "messages[0].content",
            "messages[0].content must be a string or an array of text content parts"),
        bad(
            "{'messages':[{'role':'assistant','tool_calls':[{'id':'c1','type':'function',"
                + "'function':{'name':'a'}}]}]}",
            "messages[0].tool_calls[0].function.arguments",
            "messages[0].tool_calls[0].function.arguments is required"),
        bad(
            "{'messages':[{'role':'assistant','tool_calls':[{'type':'function',"
                + "'function':{'name':'a','arguments':'{}'}}]}]}",
            "messages[0].tool_calls[0].id",
            "messages[0].tool_calls[0].id is required"),
        bad(
            "{'messages':[{'role':'assistant','tool_calls':[{'id':'c1','type':'function',"
                + "'function':{'name':'a','arguments':{}}}]}]}",
            "messages[0].tool_calls[0].function.arguments",
            "messages[0].tool_calls[0].function.arguments must be a string"));
  }

  @ParameterizedTest
  @MethodSource("badToolsFormatsAndToolMessages")
  void refusesBadToolsResponseFormatsAndToolMessagesNamingTheField(
      String change, String param, String message) throws Exception {
    refusesWhatJacksonWouldCoerceAndNamesTheWirePath(change, param, message);
  }

  /** A tool whose parameters schema nests {@code levels} objects deep. */
  private static String toolNested(int levels) {
    String schema = "{\"a\":".repeat(levels - 1) + "{}" + "}".repeat(levels - 1);
    return "{\"model\":\"demo-model\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
        + "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"deep\",\"parameters\":"
        + schema
        + "}}]}";
  }

  @Test
  void boundsTheSchemasItForwardsInDepthAndSize() throws Exception {
    JsonNode deep = expectError(post("/v1/chat/completions", toolNested(65)), 400);
    assertThat(deep.get("param").asText()).isEqualTo("tools[0].function.parameters");
    assertThat(deep.get("message").asText())
        .isEqualTo("tools[0].function.parameters must not nest deeper than 64 levels");
    // Thousands of levels: refused by the JSON reader before anything is bound.
    JsonNode deeper = expectError(post("/v1/chat/completions", toolNested(5_000)), 400);
    assertThat(deeper.get("param").asText()).isEqualTo("tools[0].function.parameters");

    String big =
        "{\"model\":\"demo-model\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
            + "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"big\","
            + "\"schema\":{\"description\":\""
            + "x".repeat(70_000)
            + "\"}}}}";
    JsonNode large = expectError(post("/v1/chat/completions", big), 400);
    assertThat(large.get("param").asText()).isEqualTo("response_format.json_schema.schema");
    assertThat(large.get("message").asText())
        .isEqualTo("response_format.json_schema.schema must be at most 65536 bytes as JSON");
  }

  @Test
  void refusesAThousandTools() throws Exception {
    StringBuilder tools = new StringBuilder();
    for (int i = 0; i < 1_000; i++) {
      tools
          .append(i == 0 ? "" : ",")
          .append(TOOL.replace('\'', '"').replace("get_weather", "f" + i));
    }
    JsonNode error =
        expectError(
            post(
                "/v1/chat/completions",
                "{\"model\":\"demo-model\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                    + "\"tools\":["
                    + tools
                    + "]}"),
            400);
    assertThat(error.get("param").asText()).isEqualTo("tools");
    assertThat(error.get("message").asText()).isEqualTo("tools must be an array of 1 to 128 tools");
  }

  @ParameterizedTest
  @CsvSource(
      delimiter = '|',
      value = {
        "/v1/chat/completions | [1,2,3]",
        "/v1/chat/completions | \"hi\"",
        "/v1/chat/completions | 42",
        "/api/chat/messages   | []",
        "/api/conversations   | [\"title\"]",
      })
  void refusesABodyThatIsNotAJsonObjectWithoutNamingAField(String path, String body)
      throws Exception {
    JsonNode error = expectError(post(path.trim(), body.trim()), 400);
    assertThat(error.get("param").isNull()).isTrue();
    assertThat(error.get("message").asText()).isEqualTo("request body must be a JSON object");
  }

  @ParameterizedTest
  @CsvSource(
      delimiter = '|',
      value = {
        "/v1/chat/completions | {\"model\":\"demo-model\",}",
        "/v1/chat/completions | {\"model\":\"demo-model\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}",
        "/api/chat/messages   | {model:\"demo-model\",\"query\":\"hi\"}",
        "/api/chat/messages   | null",
        "/api/conversations   | {\"title\":",
      })
  void refusesMalformedJsonWithoutNamingAField(String path, String body) throws Exception {
    JsonNode error = expectError(post(path.trim(), body.trim()), 400);
    assertThat(error.get("param").isNull()).isTrue();
    assertThat(error.get("type").asText()).isEqualTo("invalid_request_error");
  }

  @ParameterizedTest
  @CsvSource(
      delimiter = '|',
      value = {
        "/api/chat/messages | {\"model\":5,\"query\":\"hi\"} | model",
        "/api/chat/messages | {\"model\":\"demo-model\",\"query\":5} | query",
        "/api/chat/messages | {\"model\":\"demo-model\",\"query\":\"\"} | query",
        "/api/chat/messages | {\"query\":\"hi\"} | model",
        "/api/conversations | {\"title\":5} | title",
      })
  void namesTheProductFieldThatIsWrong(String path, String body, String param) throws Exception {
    JsonNode error = expectError(post(path.trim(), body.trim()), 400);
    assertThat(error.get("param").asText()).isEqualTo(param.trim());
  }

  @Test
  void refusesTooLongQueriesAndTitles() throws Exception {
    JsonNode query =
        expectError(
            post(
                "/api/chat/messages",
                "{\"model\":\"demo-model\",\"query\":\"" + "x".repeat(32_001) + "\"}"),
            400);
    assertThat(query.get("param").asText()).isEqualTo("query");
    assertThat(query.get("message").asText()).isEqualTo("query is longer than 32000 characters");
    JsonNode title =
        expectError(post("/api/conversations", "{\"title\":\"" + "x".repeat(201) + "\"}"), 400);
    assertThat(title.get("param").asText()).isEqualTo("title");
  }

  @Test
  void refusesBodiesNestedThousandsDeep() throws Exception {
    String deep = "[".repeat(100_000) + "]".repeat(100_000);
    expectError(post("/v1/chat/completions", deep), 400);
    expectError(
        post(
            "/v1/chat/completions",
            "{\"model\":\"demo-model\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                + "\"x\":"
                + deep
                + "}"),
        400);
  }

  @Test
  void refusesAJsonBodyThatIsNotAnObject() throws Exception {
    expectError(post("/v1/chat/completions", "[1,2,3]"), 400);
  }

  @Test
  void answers404ForAnUnknownModel() throws Exception {
    JsonNode error =
        expectError(
            post(
                "/v1/chat/completions",
                "{\"model\":\"gpt-9\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"),
            404);
    assertThat(error.get("code").asText()).isEqualTo("model_not_found");
    expectError(post("/api/chat/messages", "{\"model\":\"gpt-9\",\"query\":\"hi\"}"), 404);
  }

  @Test
  void refusesInvalidUtf8() throws Exception {
    byte[] prefix = "{\"model\":\"demo-model\",\"query\":\"".getBytes(StandardCharsets.UTF_8);
    byte[] body = new byte[prefix.length + 4];
    System.arraycopy(prefix, 0, body, 0, prefix.length);
    body[prefix.length] = (byte) 0xff;
    body[prefix.length + 1] = (byte) 0xfe;
    body[prefix.length + 2] = '"';
    body[prefix.length + 3] = '}';
    Response response =
        SseClient.HTTP
            .newCall(request("/api/chat/messages").post(RequestBody.create(body, JSON)).build())
            .execute();
    expectError(response, 400);
  }

  @Test
  void refusesATenMegabyteBodyBeforeReadingItWithoutDisturbingStreams() throws Exception {
    LiveStream live = new LiveStream();
    UPSTREAM.enqueue(live);
    SseClient stream =
        postStream(
            "/v1/chat/completions",
            "{\"model\":\"demo-model\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    live.token("before");
    assertThat(stream.next().data()).contains("before");

    String status;
    try (Socket socket = new Socket("127.0.0.1", port)) {
      OutputStream out = socket.getOutputStream();
      out.write(
          ("POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\n"
                  + "Authorization: Bearer "
                  + ADMIN_KEY
                  + "\r\nContent-Type: application/json\r\nContent-Length: 10485760\r\n\r\n")
              .getBytes(StandardCharsets.US_ASCII));
      // Only the first 64 KiB are sent: the answer must come without the rest of the body.
      out.write(new byte[64 * 1024]);
      out.flush();
      InputStream in = socket.getInputStream();
      StringBuilder line = new StringBuilder();
      for (int c = in.read(); c != '\n' && c >= 0; c = in.read()) {
        line.append((char) c);
      }
      status = line.toString().trim();
    }
    assertThat(status).startsWith("HTTP/1.1 413");

    live.token(" after");
    live.finish();
    assertThat(stream.next().data()).contains(" after");
    stream.close();
    UPSTREAM.reset();
  }

  @Test
  void refusesAChunkedBodyThatOutgrowsTheLimit() throws Exception {
    String big = "x".repeat(2 * 1024 * 1024);
    RequestBody chunked =
        new RequestBody() {
          @Override
          public MediaType contentType() {
            return JSON;
          }

          @Override
          public long contentLength() {
            return -1;
          }

          @Override
          public void writeTo(okio.BufferedSink sink) throws java.io.IOException {
            sink.writeUtf8("{\"model\":\"demo-model\",\"query\":\"" + big + "\"}");
          }
        };
    try {
      Response response =
          SseClient.HTTP.newCall(request("/api/chat/messages").post(chunked).build()).execute();
      expectError(response, 413);
    } catch (java.io.IOException closedEarly) {
      // Also acceptable: the gateway answered 413 and closed before the upload ended.
    }
  }

  @Test
  void refusesMissingAndWrongKeysWith401() throws Exception {
    Request noKey =
        new Request.Builder()
            .url(url("/v1/chat/completions"))
            .post(RequestBody.create("{}", JSON))
            .build();
    JsonNode error = expectError(SseClient.HTTP.newCall(noKey).execute(), 401);
    assertThat(error.get("type").asText()).isEqualTo("authentication_error");

    Request wrongKey =
        new Request.Builder()
            .url(url("/api/conversations"))
            .header("Authorization", "Bearer not-the-key")
            .get()
            .build();
    expectError(SseClient.HTTP.newCall(wrongKey).execute(), 401);
  }

  @Test
  void aSessionCookieStandsInForTheKeyUntilLogout() throws Exception {
    Response wrong =
        SseClient.HTTP
            .newCall(
                new Request.Builder()
                    .url(url("/api/session"))
                    .post(RequestBody.create("{\"apiKey\":\"nope\"}", JSON))
                    .build())
            .execute();
    expectError(wrong, 401);

    String cookie;
    try (Response login = login(ADMIN_KEY, new Request.Builder())) {
      assertThat(login.code()).isEqualTo(204);
      String setCookie = login.header("Set-Cookie");
      assertThat(setCookie).contains("HttpOnly").contains("SameSite=Strict");
      cookie = setCookie.substring(0, setCookie.indexOf(';'));
    }
    Request withCookie =
        new Request.Builder().url(url("/api/conversations")).header("Cookie", cookie).get().build();
    try (Response ok = SseClient.HTTP.newCall(withCookie).execute()) {
      assertThat(ok.code()).isEqualTo(200);
    }

    SseClient.HTTP
        .newCall(
            new Request.Builder()
                .url(url("/api/session"))
                .header("Cookie", cookie)
                .delete()
                .build())
        .execute()
        .close();
    expectError(SseClient.HTTP.newCall(withCookie).execute(), 401);
  }

  @Test
  void servesTheChatPageAndHealthWithoutAKey() throws Exception {
    try (Response page =
        SseClient.HTTP.newCall(new Request.Builder().url(url("/")).build()).execute()) {
      assertThat(page.code()).isEqualTo(200);
      assertThat(page.body().string()).containsIgnoringCase("<html");
    }
    try (Response health =
        SseClient.HTTP
            .newCall(new Request.Builder().url(url("/actuator/health")).build())
            .execute()) {
      assertThat(health.code()).isEqualTo(200);
    }
  }
}
