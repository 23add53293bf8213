package io.selfhosted.gateway.safety;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.selfhosted.gateway.support.GatewayIntegrationTest;
import io.selfhosted.gateway.support.Json;
import okhttp3.Response;
import org.junit.jupiter.api.Test;

/** The content-rules admin API on a gateway without a rules file (the default). */
class ContentRulesAdminIntegrationTests extends GatewayIntegrationTest {

  @Test
  void withoutARulesFileTheListIsEmptyAndAReloadSaysWhy() throws Exception {
    JsonNode rules = body(get("/admin/content/rules"));
    assertThat(rules.get("rules")).isEmpty();
    try (Response reload = post("/admin/content/rules/reload", "")) {
      JsonNode error = Json.parse(reload.body().string()).get("error");
      assertThat(reload.code()).isEqualTo(400);
      assertThat(error.get("code").asText()).isEqualTo("invalid_content_rules");
      assertThat(error.get("message").asText()).contains("gateway.content.rules-file");
    }
  }

  @Test
  void usersMayNotReloadTheRules() throws Exception {
    Key user = createKey("{\"name\":\"user\"}");
    try (Response response = postAs(user.secret(), "/admin/content/rules/reload", "")) {
      assertThat(response.code()).isEqualTo(403);
    }
  }
}
