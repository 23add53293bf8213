package io.selfhosted.gateway.auth;

import static org.assertj.core.api.Assertions.assertThat;

import io.selfhosted.gateway.support.GatewayIntegrationTest;
import io.selfhosted.gateway.support.SseClient;
import okhttp3.Request;
import okhttp3.Response;
import org.junit.jupiter.api.Test;
import org.springframework.test.context.TestPropertySource;

/** A gateway started with GATEWAY_API_DOCS=public: the document is there for anyone. */
@TestPropertySource(properties = "gateway.auth.api-docs=public")
class ApiDocsPublicIntegrationTests extends GatewayIntegrationTest {

  @Test
  void anyoneReadsTheDocumentButNothingElseOpensUp() throws Exception {
    try (Response document =
        SseClient.HTTP.newCall(new Request.Builder().url(url("/v3/api-docs")).build()).execute()) {
      assertThat(document.code()).isEqualTo(200);
      assertThat(body(document).get("openapi").asText()).startsWith("3.");
    }
    try (Response models =
        SseClient.HTTP.newCall(new Request.Builder().url(url("/v1/models")).build()).execute()) {
      assertThat(models.code()).isEqualTo(401);
    }
  }
}
