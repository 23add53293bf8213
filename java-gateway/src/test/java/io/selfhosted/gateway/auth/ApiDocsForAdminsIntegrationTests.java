package io.selfhosted.gateway.auth;

import static org.assertj.core.api.Assertions.assertThat;

import io.selfhosted.gateway.support.GatewayIntegrationTest;
import io.selfhosted.gateway.support.SseClient;
import okhttp3.Request;
import okhttp3.Response;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.springframework.boot.test.system.CapturedOutput;
import org.springframework.boot.test.system.OutputCaptureExtension;
import org.springframework.test.context.TestPropertySource;

/**
 * A gateway started with GATEWAY_API_DOCS=admin: the document is for admins only. Its settings give
 * it an application context of its own, started while this class captures the output, so its
 * start-up log is here to read too.
 */
@ExtendWith(OutputCaptureExtension.class)
@TestPropertySource(properties = "gateway.auth.api-docs=admin")
class ApiDocsForAdminsIntegrationTests extends GatewayIntegrationTest {

  @Test
  void onlyAnAdminKeyReadsTheDocument() throws Exception {
    Key user = createKey("{\"name\":\"not an admin\",\"role\":\"user\"}");
    for (String path : new String[] {"/v3/api-docs", "/v3/api-docs.yaml"}) {
      try (Response anonymous =
          SseClient.HTTP.newCall(new Request.Builder().url(url(path)).build()).execute()) {
        assertThat(anonymous.code()).as(path).isEqualTo(401);
        assertThat(body(anonymous).at("/error/type").asText()).isEqualTo("authentication_error");
      }
      try (Response refused = getAs(user.secret(), path)) {
        assertThat(refused.code()).as(path).isEqualTo(403);
        assertThat(body(refused).at("/error/type").asText()).isEqualTo("permission_error");
      }
      try (Response admin = get(path)) {
        assertThat(admin.code()).as(path).isEqualTo(200);
      }
    }
    try (Response chat = postAs(user.secret(), "/v1/chat/completions", CHAT)) {
      assertThat(chat.code()).as("the API itself is unchanged").isEqualTo(200);
    }
  }

  @Test
  void startsWithoutPrintingAGeneratedPassword(CapturedOutput output) {
    assertThat(output.getAll())
        .as("this class's gateway started while the output was captured")
        .contains("Tomcat started on port " + port)
        .doesNotContain("Using generated security password");
  }
}
