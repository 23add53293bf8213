package io.selfhosted.gateway.system;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.selfhosted.gateway.support.FakeModelService;
import io.selfhosted.gateway.support.GatewayIntegrationTest;
import io.selfhosted.gateway.support.Json;
import io.selfhosted.gateway.support.Parallel;
import io.selfhosted.gateway.support.SseClient;
import java.util.List;
import okhttp3.MediaType;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.springframework.boot.test.system.CapturedOutput;
import org.springframework.boot.test.system.OutputCaptureExtension;

/** Security headers, the OpenAPI document, and request ids in every log line of a request. */
@ExtendWith(OutputCaptureExtension.class)
class HardeningIntegrationTests extends GatewayIntegrationTest {

  @Test
  void pagesAndApiRepliesCarryTheSecurityHeaders() throws Exception {
    for (Request request :
        new Request[] {
          new Request.Builder().url(url("/")).build(),
          new Request.Builder().url(url("/js/chat.js")).build(),
          request("/v1/models").build(),
          new Request.Builder().url(url("/v1/models")).build()
        }) {
      try (Response response = SseClient.HTTP.newCall(request).execute()) {
        String csp = response.header("Content-Security-Policy");
        assertThat(csp).as(request.url().toString()).isNotNull();
        assertThat(csp)
            .contains("script-src 'self'")
            .contains("style-src 'self'")
            .contains("frame-ancestors 'none'")
            .doesNotContain("unsafe-inline");
        assertThat(response.header("X-Content-Type-Options")).isEqualTo("nosniff");
        assertThat(response.header("Referrer-Policy")).isEqualTo("no-referrer");
        assertThat(response.header("X-Frame-Options")).isEqualTo("DENY");
      }
    }
  }

  @Test
  void streamsOpenedAllAtOnceEachGetTheirHeadersAndEveryToken() throws Exception {
    // A stream's response is committed by the thread that reads the upstream, while the request's
    // own thread leaves the filter chain: both touch the response's headers only in turn.
    List<String> outcomes =
        Parallel.run(
            200,
            () -> {
              try (SseClient stream = postStream("/v1/chat/completions", CHAT_STREAM)) {
                List<SseClient.Event> events = stream.rest();
                String text =
                    events.stream()
                        .filter(e -> !e.data().equals("[DONE]"))
                        .map(e -> Json.parse(e.data()).at("/choices/0/delta/content").asText(""))
                        .reduce("", String::concat);
                return stream.response().code()
                    + " "
                    + (stream.response().header("Content-Security-Policy") != null)
                    + " "
                    + text
                    + " "
                    + events.get(events.size() - 1).data();
              }
            });

    assertThat(outcomes).hasSize(200).containsOnly("200 true Hello, world! [DONE]");
  }

  @Test
  void publishesAnOpenApiDocumentOfTheApi() throws Exception {
    Key reader = createKey("{\"name\":\"api-docs reader\",\"role\":\"user\"}");
    try (Response response = getAs(reader.secret(), "/v3/api-docs")) {
      assertThat(response.code()).isEqualTo(200);
      JsonNode document = Json.parse(response.body().string());
      assertThat(document.get("openapi").asText()).startsWith("3.");
      JsonNode paths = document.get("paths");
      assertThat(paths.has("/v1/chat/completions")).isTrue();
      assertThat(paths.has("/v1/models")).isTrue();
      assertThat(paths.has("/api/conversations")).isTrue();
      assertThat(paths.has("/admin/keys")).isTrue();
      assertThat(paths.has("/admin/keys/{id}")).isTrue();
      assertThat(paths.has("/admin/usage")).isTrue();
      assertThat(paths.has("/admin/audit")).isTrue();
      assertThat(paths.has("/api/usage")).isTrue();
      assertThat(paths.has("/api/session")).isTrue();
    }
  }

  @Test
  void documentsTheRequestBodiesWithTheirConstraintsAndTheConfiguredModels() throws Exception {
    // Any valid key may read the document (gateway.auth.api-docs' default).
    JsonNode document = body(get("/v3/api-docs"));
    JsonNode schemas = document.at("/components/schemas");
    String models = "[\"demo-model\",\"second-model\"]";
    for (String[] operation :
        new String[][] {
          {"/v1/chat/completions", "post", "ChatCompletionRequest"},
          {"/api/chat/messages", "post", "ProductMessageRequest"},
          {"/api/conversations/{id}/messages", "post", "MessageRequest"},
          {"/api/conversations", "post", "ConversationRequest"},
          {"/admin/switches/{kind}", "put", "SwitchRequest"},
        }) {
      JsonNode body = document.get("paths").get(operation[0]).get(operation[1]).get("requestBody");
      assertThat(body.at("/content/application~1json/schema/$ref").asText())
          .as(operation[0])
          .isEqualTo("#/components/schemas/" + operation[2]);
      JsonNode model = schemas.get(operation[2]).at("/properties/model");
      if (!model.isMissingNode()) {
        assertThat(model.get("enum").toString()).as(operation[2]).isEqualTo(models);
      }
    }
    JsonNode chat = schemas.get("ChatCompletionRequest");
    assertThat(chat.get("required").toString()).contains("\"model\"").contains("\"messages\"");
    assertThat(chat.at("/properties/messages/minItems").asInt()).isEqualTo(1);
    assertThat(chat.at("/properties/max_tokens/minimum").asInt()).isEqualTo(1);
    assertThat(chat.at("/properties/temperature/maximum").asInt()).isEqualTo(2);
    assertThat(chat.at("/properties/top_p/maximum").asInt()).isEqualTo(1);
    assertThat(chat.at("/properties/logprobs/type").toString()).contains("boolean");
    assertThat(chat.at("/properties/top_logprobs/minimum").toString()).isEqualTo("0");
    assertThat(chat.at("/properties/top_logprobs/maximum").asInt()).isEqualTo(20);
    assertThat(chat.at("/properties/n/maximum").asInt()).isEqualTo(16);
    assertThat(chat.at("/properties/tools/maxItems").asInt()).isEqualTo(128);
    assertThat(chat.at("/properties/tools/items/$ref").asText()).endsWith("/Tool");
    assertThat(chat.at("/properties/tool_choice/oneOf/1/$ref").asText())
        .endsWith("/NamedToolChoice");
    assertThat(chat.at("/properties/parallel_tool_calls/type").asText()).isEqualTo("boolean");
    assertThat(chat.at("/properties/response_format/$ref").asText()).endsWith("/ResponseFormat");
    assertThat(schemas.at("/ResponseFormat/properties/type/enum").toString())
        .isEqualTo("[\"text\",\"json_object\",\"json_schema\"]");
    assertThat(schemas.at("/JsonSchemaFormat/required").toString()).contains("\"schema\"");
    assertThat(schemas.at("/FunctionDefinition/properties/name/pattern").asText())
        .isEqualTo("^[a-zA-Z0-9_-]{1,64}$");
    assertThat(chat.at("/properties/stream_options/$ref").asText()).endsWith("/StreamOptions");
    assertThat(chat.at("/properties/stop/oneOf")).hasSize(2);
    JsonNode message = schemas.get("ChatMessage");
    assertThat(message.at("/properties/role/enum").toString())
        .isEqualTo("[\"system\",\"user\",\"assistant\",\"tool\"]");
    assertThat(message.at("/properties/tool_calls/items/$ref").asText()).endsWith("/ToolCall");
    assertThat(message.at("/properties/tool_call_id/type").asText()).isEqualTo("string");
    assertThat(message.at("/properties/content/oneOf/1/items/$ref").asText())
        .endsWith("/TextContentPart");
    assertThat(schemas.at("/ProductMessageRequest/properties/query/maxLength").asInt())
        .isEqualTo(32_000);
    assertThat(schemas.at("/ConversationRequest/properties/title/maxLength").asInt())
        .isEqualTo(200);
    assertThat(schemas.at("/SwitchRequest/properties/ttlSeconds/minimum").asInt()).isEqualTo(1);
  }

  @Test
  void documentsTheKeyAndSessionBodies() throws Exception {
    JsonNode document = body(get("/v3/api-docs"));
    for (String[] operation :
        new String[][] {
          {"/admin/keys", "post", "KeyRequest"},
          {"/admin/keys/{id}", "patch", "KeyUpdateRequest"},
          {"/api/session", "post", "SessionRequest"},
        }) {
      JsonNode body = document.get("paths").get(operation[0]).get(operation[1]).get("requestBody");
      assertThat(body.at("/content/application~1json/schema/$ref").asText())
          .as(operation[0])
          .isEqualTo("#/components/schemas/" + operation[2]);
    }
    JsonNode schemas = document.at("/components/schemas");
    JsonNode create = schemas.get("KeyRequest");
    assertThat(create.get("required").toString()).isEqualTo("[\"name\"]");
    assertThat(create.at("/properties/name/maxLength").asInt()).isEqualTo(200);
    assertThat(create.at("/properties/role/enum").toString()).isEqualTo("[\"user\",\"admin\"]");
    assertThat(create.at("/properties/models/items/type").asText()).isEqualTo("string");
    assertThat(create.at("/properties/limits/$ref").asText()).endsWith("/KeyLimits");
    assertThat(create.at("/properties/expiresAt/format").asText()).isEqualTo("date-time");
    assertThat(create.at("/properties/models/type").toString()).contains("null");
    JsonNode update = schemas.get("KeyUpdateRequest");
    assertThat(update.has("required")).as("every field may be left out").isFalse();
    assertThat(update.at("/properties/name/maxLength").asInt()).isEqualTo(200);
    assertThat(update.at("/properties/models/items/type").asText()).isEqualTo("string");
    assertThat(update.at("/properties/limits/$ref").asText()).endsWith("/KeyLimits");
    assertThat(update.at("/properties/expiresAt/format").asText()).isEqualTo("date-time");
    assertThat(update.at("/properties/expiresAt/type").toString()).contains("null");
    assertThat(update.at("/properties/role").isMissingNode()).isTrue();
    assertThat(schemas.at("/KeyLimits/properties/tokensPerMinute/minimum").asInt()).isEqualTo(1);
    assertThat(schemas.at("/SessionRequest/required").toString()).isEqualTo("[\"apiKey\"]");
  }

  @Test
  void relayThreadsLogWithTheRequestId(CapturedOutput output) throws Exception {
    UPSTREAM.enqueue(FakeModelService.error(500, "server_error", "boom", "exploded"));
    try (Response response =
        SseClient.HTTP
            .newCall(
                request("/v1/chat/completions")
                    .header("X-Request-Id", "relay-log-42")
                    .post(RequestBody.create(CHAT_STREAM, MediaType.get("application/json")))
                    .build())
            .execute()) {
      assertThat(response.code()).isEqualTo(502);
    }

    // The upstream failure is logged by the okhttp thread reading the stream, not the request's.
    assertThat(output.getAll().lines())
        .anySatisfy(
            line ->
                assertThat(line)
                    .contains("[relay-log-42]")
                    .contains("UpstreamStreams")
                    .contains("failed: exploded"));
  }
}
