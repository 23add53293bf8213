package io.selfhosted.gateway.auth;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.selfhosted.gateway.support.GatewayIntegrationTest;
import io.selfhosted.gateway.support.Json;
import io.selfhosted.gateway.support.SseClient;
import okhttp3.MediaType;
import okhttp3.RequestBody;
import okhttp3.Response;
import org.junit.jupiter.api.Test;

/** A key's fair-share weight in the admin API: set, shown, changed, refused when bad. */
class KeyWeightIntegrationTests extends GatewayIntegrationTest {

  @Test
  void anAdminSetsShowsAndChangesAKeysWeight() throws Exception {
    Key key =
        createKey("{\"name\":\"heavy\",\"limits\":{\"weight\":2.5,\"requestsPerMinute\":60}}");
    assertThat(body(get("/admin/keys/" + key.id())).at("/limits/weight").asDouble()).isEqualTo(2.5);

    try (Response changed = patch("/admin/keys/" + key.id(), "{\"limits\":{\"weight\":0.5}}")) {
      assertThat(changed.code()).isEqualTo(200);
    }
    JsonNode limits = body(get("/admin/keys/" + key.id())).get("limits");
    assertThat(limits.get("weight").asDouble()).isEqualTo(0.5);
    assertThat(limits.has("requestsPerMinute")).as("limits are replaced as a whole").isFalse();

    Key plain = createKey("{\"name\":\"plain\"}");
    assertThat(body(get("/admin/keys/" + plain.id())).at("/limits/weight").isMissingNode())
        .as("no weight set: the default 1, not shown")
        .isTrue();
  }

  @Test
  void aBadWeightIsRefusedInTheEnvelope() throws Exception {
    Key key = createKey("{\"name\":\"weighed\"}");
    String[] bad = {"0", "-1", "1000.5", "1e400", "\"2\"", "true", "[2]", "{}"};
    for (String weight : bad) {
      String limits = "{\"limits\":{\"weight\":" + weight + "}}";
      for (Response response :
          new Response[] {
            post("/admin/keys", "{\"name\":\"x\"," + limits.substring(1)),
            patch("/admin/keys/" + key.id(), limits)
          }) {
        JsonNode error;
        try (response) {
          assertThat(response.code()).as(weight).isEqualTo(400);
          error = Json.parse(response.body().string()).get("error");
        }
        assertThat(error.get("param").asText()).as(weight).isEqualTo("limits.weight");
        assertThat(error.get("type").asText()).isEqualTo("invalid_request_error");
      }
    }
    assertThat(body(get("/admin/keys/" + key.id())).at("/limits/weight").isMissingNode()).isTrue();
  }

  @Test
  void onlyAdminsSetAWeight() throws Exception {
    Key user = createKey("{\"name\":\"user\"}");
    try (Response response =
        SseClient.HTTP
            .newCall(
                requestAs(user.secret(), "/admin/keys/" + user.id())
                    .patch(
                        RequestBody.create(
                            "{\"limits\":{\"weight\":100}}", MediaType.get("application/json")))
                    .build())
            .execute()) {
      assertThat(response.code()).isEqualTo(403);
    }
    assertThat(body(get("/admin/keys/" + user.id())).at("/limits/weight").isMissingNode()).isTrue();
  }
}
