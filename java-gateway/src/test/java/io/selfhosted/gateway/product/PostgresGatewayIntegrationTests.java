package io.selfhosted.gateway.product;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.selfhosted.gateway.support.FakeModelService;
import io.selfhosted.gateway.support.Json;
import io.selfhosted.gateway.support.SseClient;
import okhttp3.MediaType;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfEnvironmentVariable;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;

/**
 * The whole gateway configured for PostgreSQL (Flyway migrates at start-up). Runs where
 * scripts/test-java.sh provides a server through GATEWAY_TEST_PG_URL; see
 * ConversationRepositoryPostgresTests for why it is skipped elsewhere.
 */
@EnabledIfEnvironmentVariable(named = "GATEWAY_TEST_PG_URL", matches = "jdbc:postgresql:.+")
@SpringBootTest(webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT)
class PostgresGatewayIntegrationTests {

  private static final FakeModelService UPSTREAM = new FakeModelService();
  private static final MediaType JSON = MediaType.get("application/json");

  @LocalServerPort int port;

  @DynamicPropertySource
  static void properties(DynamicPropertyRegistry registry) {
    registry.add("gateway.upstream.urls", UPSTREAM::url);
    registry.add("gateway.auth.admin-api-key", () -> "pg-key");
    registry.add("spring.datasource.url", () -> System.getenv("GATEWAY_TEST_PG_URL"));
    registry.add(
        "spring.datasource.username",
        () -> System.getenv().getOrDefault("GATEWAY_TEST_PG_USER", "gateway"));
    registry.add(
        "spring.datasource.password",
        () -> System.getenv().getOrDefault("GATEWAY_TEST_PG_PASSWORD", ""));
  }

  @AfterAll
  static void stop() {
    UPSTREAM.close();
  }

  private Response call(String path, String json) throws Exception {
    Request.Builder request =
        new Request.Builder()
            .url("http://127.0.0.1:" + port + path)
            .header("Authorization", "Bearer pg-key");
    request = json == null ? request.get() : request.post(RequestBody.create(json, JSON));
    return SseClient.HTTP.newCall(request.build()).execute();
  }

  @Test
  void storesATurnInPostgres() throws Exception {
    String conversation;
    try (Response created = call("/api/conversations", "{}")) {
      conversation = Json.parse(created.body().string()).get("id").asText();
    }
    try (SseClient stream =
        new SseClient(
            call(
                "/api/chat/messages",
                "{\"conversationId\":\""
                    + conversation
                    + "\",\"model\":\"demo-model\",\"query\":\"你好\"}"))) {
      assertThat(stream.rest()).last().extracting(SseClient.Event::event).isEqualTo("finish");
    }

    JsonNode messages;
    try (Response listed = call("/api/conversations/" + conversation + "/messages", null)) {
      messages = Json.parse(listed.body().string()).get("data");
    }
    assertThat(messages.get(0).get("content").asText()).isEqualTo("你好");
    assertThat(messages.get(1).get("content").asText()).isEqualTo("Hello, world!");
    assertThat(messages.get(1).get("status").asText()).isEqualTo("complete");
  }
}
