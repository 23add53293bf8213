package io.selfhosted.gateway.auth;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import io.selfhosted.gateway.support.GatewayIntegrationTest;
import io.selfhosted.gateway.support.Json;
import io.selfhosted.gateway.support.SseClient;
import java.io.IOException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.UnaryOperator;
import okhttp3.MediaType;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Every endpoint against every kind of credential: nothing, a wrong key, a revoked key, an expired
 * key, a user key, an admin key, a session cookie, and a cookie whose key was revoked since.
 */
class AuthorizationMatrixIntegrationTests extends GatewayIntegrationTest {

  private static final MediaType JSON = MediaType.get("application/json");

  /** Who may call an endpoint. */
  private enum Access {
    ANYONE,
    USER,
    ADMIN
  }

  private record Endpoint(String method, String path, String body, Access access) {
    @Override
    public String toString() {
      return method + " " + path;
    }
  }

  private final List<Endpoint> endpoints = new ArrayList<>();

  @BeforeEach
  void endpoints() throws IOException {
    Key subject = createKey("{\"name\":\"subject\"}");
    endpoints.addAll(
        List.of(
            new Endpoint("GET", "/v1/models", null, Access.USER),
            new Endpoint("POST", "/v1/chat/completions", CHAT, Access.USER),
            new Endpoint("GET", "/api/conversations", null, Access.USER),
            new Endpoint("POST", "/api/conversations", "{}", Access.USER),
            new Endpoint("GET", "/api/usage", null, Access.USER),
            new Endpoint("GET", "/api/session", null, Access.USER),
            new Endpoint("GET", "/admin/keys", null, Access.ADMIN),
            new Endpoint("POST", "/admin/keys", "{\"name\":\"made-in-matrix\"}", Access.ADMIN),
            new Endpoint("GET", "/admin/keys/" + subject.id(), null, Access.ADMIN),
            new Endpoint("PATCH", "/admin/keys/" + subject.id(), "{\"name\":\"x\"}", Access.ADMIN),
            new Endpoint("GET", "/admin/usage", null, Access.ADMIN),
            new Endpoint("GET", "/admin/audit", null, Access.ADMIN),
            new Endpoint("GET", "/admin/switches", null, Access.ADMIN),
            new Endpoint("PUT", "/admin/switches/max_tokens", "{\"enabled\":false}", Access.ADMIN),
            new Endpoint("DELETE", "/admin/switches/streaming_off", null, Access.ADMIN),
            new Endpoint("GET", "/admin/content/rules", null, Access.ADMIN),
            new Endpoint("GET", "/admin/status", null, Access.ADMIN),
            new Endpoint("GET", "/actuator/prometheus", null, Access.ADMIN),
            new Endpoint("GET", "/actuator/health", null, Access.ANYONE),
            // gateway.auth.api-docs defaults to any valid key (ApiDocs*IntegrationTests: others)
            new Endpoint("GET", "/v3/api-docs", null, Access.USER),
            new Endpoint("GET", "/v3/api-docs.yaml", null, Access.USER),
            new Endpoint("GET", "/", null, Access.ANYONE)));
  }

  private int call(Endpoint endpoint, UnaryOperator<Request.Builder> credentials)
      throws IOException {
    Request.Builder builder = credentials.apply(new Request.Builder().url(url(endpoint.path())));
    RequestBody body = endpoint.body() == null ? null : RequestBody.create(endpoint.body(), JSON);
    builder.method(endpoint.method(), body);
    try (Response response = SseClient.HTTP.newCall(builder.build()).execute()) {
      if (response.code() == 401 || response.code() == 403) {
        JsonNode error = Json.parse(response.body().string()).get("error");
        assertThat(error.get("type").asText())
            .as("%s answers in the error envelope", endpoint)
            .isIn("authentication_error", "permission_error");
      }
      return response.code();
    }
  }

  private static UnaryOperator<Request.Builder> bearer(String key) {
    return b -> b.header("Authorization", "Bearer " + key);
  }

  private UnaryOperator<Request.Builder> cookie(String key) throws IOException {
    String cookie = sessionCookie(key);
    // A browser sends its own origin with every state-changing request.
    return b -> b.header("Cookie", cookie).header("Origin", "http://127.0.0.1:" + port);
  }

  /** The status each endpoint gives these credentials, by endpoint. */
  private Map<String, Integer> statuses(UnaryOperator<Request.Builder> credentials)
      throws IOException {
    Map<String, Integer> statuses = new LinkedHashMap<>();
    for (Endpoint endpoint : endpoints) {
      statuses.put(endpoint.toString(), call(endpoint, credentials));
    }
    return statuses;
  }

  /** 2xx where {@code granted} may call, else {@code refused}. */
  private Map<String, Integer> expected(List<Access> granted, int refused) {
    Map<String, Integer> expected = new LinkedHashMap<>();
    for (Endpoint endpoint : endpoints) {
      boolean ok = endpoint.access() == Access.ANYONE || granted.contains(endpoint.access());
      expected.put(endpoint.toString(), ok ? success(endpoint) : refused);
    }
    return expected;
  }

  private static int success(Endpoint endpoint) {
    return endpoint.method().equals("POST") && endpoint.path().matches("/(api|admin)/[a-z]+")
        ? 201
        : 200;
  }

  @Test
  void withoutAnyCredentialsOnlyThePublicEndpointsAnswer() throws Exception {
    assertThat(statuses(b -> b)).isEqualTo(expected(List.of(), 401));
  }

  @Test
  void aWrongKeyIsRefusedEverywhereButThePublicEndpoints() throws Exception {
    assertThat(statuses(bearer("sk-not-a-key"))).isEqualTo(expected(List.of(), 401));
  }

  @Test
  void aRevokedKeyIsRefused() throws Exception {
    Key key = createKey("{\"name\":\"to revoke\"}");
    assertThat(call(endpoints.get(0), bearer(key.secret()))).isEqualTo(200);
    try (Response revoked = delete("/admin/keys/" + key.id())) {
      assertThat(revoked.code()).isEqualTo(200);
    }

    assertThat(statuses(bearer(key.secret()))).isEqualTo(expected(List.of(), 401));
  }

  @Test
  void anExpiredKeyIsRefused() throws Exception {
    Instant expiry = Instant.now().plusSeconds(1);
    Key key = createKey("{\"name\":\"short-lived\",\"expiresAt\":\"" + expiry + "\"}");
    assertThat(call(endpoints.get(0), bearer(key.secret()))).isEqualTo(200);
    await().until(() -> Instant.now().isAfter(expiry));

    assertThat(statuses(bearer(key.secret()))).isEqualTo(expected(List.of(), 401));
  }

  @Test
  void aUserKeyReachesTheApiButNotTheAdminEndpoints() throws Exception {
    Key key = createKey("{\"name\":\"user\",\"role\":\"user\"}");
    assertThat(statuses(bearer(key.secret()))).isEqualTo(expected(List.of(Access.USER), 403));
  }

  @Test
  void anAdminKeyReachesEverything() throws Exception {
    Key key = createKey("{\"name\":\"second admin\",\"role\":\"admin\"}");
    assertThat(statuses(bearer(key.secret())))
        .isEqualTo(expected(List.of(Access.USER, Access.ADMIN), 403));
    assertThat(statuses(bearer(ADMIN_KEY)))
        .as("ADMIN_API_KEY bootstraps an admin")
        .isEqualTo(expected(List.of(Access.USER, Access.ADMIN), 403));
  }

  @Test
  void aSessionCookieActsAsItsKey() throws Exception {
    Key user = createKey("{\"name\":\"browser user\"}");
    assertThat(statuses(cookie(user.secret()))).isEqualTo(expected(List.of(Access.USER), 403));
    assertThat(statuses(cookie(ADMIN_KEY)))
        .isEqualTo(expected(List.of(Access.USER, Access.ADMIN), 403));
  }

  @Test
  void aSessionDiesWithItsKey() throws Exception {
    Key user = createKey("{\"name\":\"revoked browser user\"}");
    UnaryOperator<Request.Builder> session = cookie(user.secret());
    assertThat(call(endpoints.get(0), session)).isEqualTo(200);
    delete("/admin/keys/" + user.id()).close();

    assertThat(statuses(session)).isEqualTo(expected(List.of(), 401));
  }

  @Test
  void aConversationIsVisibleOnlyToTheKeyThatStartedIt() throws Exception {
    Key alice = createKey("{\"name\":\"alice\"}");
    Key bob = createKey("{\"name\":\"bob\"}");
    String conversation =
        body(postAs(alice.secret(), "/api/conversations", "{}")).get("id").asText();
    JsonNode turn =
        body(
            postAs(
                alice.secret(),
                "/api/conversations/" + conversation + "/messages",
                "{\"model\":\"demo-model\",\"query\":\"hi\"}"));
    String stream = turn.get("streamUrl").asText();
    String messageId = turn.get("messageId").asText();

    try (Response own = getAs(alice.secret(), "/api/conversations/" + conversation + "/messages")) {
      assertThat(own.code()).isEqualTo(200);
    }
    for (String path : List.of("/api/conversations/" + conversation + "/messages", stream)) {
      try (Response other = getAs(bob.secret(), path)) {
        assertThat(other.code()).as(path).isEqualTo(404);
      }
    }
    try (Response cancel = postAs(bob.secret(), "/api/streams/" + messageId + "/cancel", "{}")) {
      assertThat(cancel.code()).isEqualTo(404);
    }
    assertThat(body(getAs(bob.secret(), "/api/conversations")).get("data")).isEmpty();
    assertThat(body(getAs(alice.secret(), "/api/conversations")).get("data")).hasSize(1);
  }
}
