package io.selfhosted.gateway.auth;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import io.selfhosted.gateway.support.GatewayIntegrationTest;
import io.selfhosted.gateway.support.Json;
import io.selfhosted.gateway.support.SseClient;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import okhttp3.MediaType;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.system.CapturedOutput;
import org.springframework.boot.test.system.OutputCaptureExtension;
import org.springframework.jdbc.core.simple.JdbcClient;

/** The key admin API: its life cycle, its bad inputs, its audit trail, and where keys never go. */
@ExtendWith(OutputCaptureExtension.class)
class KeyAdminIntegrationTests extends GatewayIntegrationTest {

  private static final MediaType JSON = MediaType.get("application/json");

  @Autowired JdbcClient jdbc;
  @Autowired ApiKeyService keyService;

  @Test
  void createsAKeyShownOnceThenListsReadsUpdatesAndRevokesIt() throws Exception {
    JsonNode created;
    try (Response response =
        post(
            "/admin/keys",
            "{\"name\":\"billing app\",\"role\":\"user\",\"models\":[\"demo-model\"],"
                + "\"limits\":{\"requestsPerMinute\":30,\"tokensPerDay\":100000},"
                + "\"expiresAt\":\"2099-01-01T00:00:00Z\"}")) {
      assertThat(response.code()).isEqualTo(201);
      created = Json.parse(response.body().string());
    }
    String id = created.get("id").asText();
    String secret = created.get("key").asText();
    assertThat(secret).startsWith("sk-").hasSizeGreaterThanOrEqualTo(40);
    assertThat(created.get("prefix").asText()).isEqualTo(secret.substring(0, 7));
    assertThat(created.get("status").asText()).isEqualTo("active");
    assertThat(created.at("/limits/requestsPerMinute").asInt()).isEqualTo(30);
    assertThat(created.at("/limits/tokensPerDay").asLong()).isEqualTo(100000);

    String listed = get("/admin/keys").body().string();
    assertThat(listed).contains(id).doesNotContain(secret);
    JsonNode read = body(get("/admin/keys/" + id));
    assertThat(read.has("key")).as("never shown again").isFalse();
    assertThat(read.get("name").asText()).isEqualTo("billing app");

    try (Response ok = postAs(secret, "/v1/chat/completions", CHAT)) {
      assertThat(ok.code()).isEqualTo(200);
    }
    // Recorded off the request path, so it shows up shortly after.
    await().until(() -> !body(get("/admin/keys/" + id)).get("lastUsedAt").isNull());

    JsonNode updated =
        body(
            patch(
                "/admin/keys/" + id,
                "{\"name\":\"billing\",\"limits\":{\"requestsPerMinute\":5}}"));
    assertThat(updated.get("name").asText()).isEqualTo("billing");
    assertThat(updated.at("/limits/requestsPerMinute").asInt()).isEqualTo(5);
    assertThat(updated.at("/limits/tokensPerDay").isMissingNode())
        .as("limits are replaced as a whole")
        .isTrue();
    assertThat(updated.get("models")).hasSize(1);

    JsonNode revoked = body(delete("/admin/keys/" + id));
    assertThat(revoked.get("status").asText()).isEqualTo("revoked");
    assertThat(revoked.get("revokedAt").isNull()).isFalse();
    try (Response refused = postAs(secret, "/v1/chat/completions", CHAT)) {
      assertThat(refused.code()).isEqualTo(401);
    }
    try (Response again = patch("/admin/keys/" + id, "{\"name\":\"back\"}")) {
      assertThat(again.code()).isEqualTo(409);
    }

    JsonNode audit = body(get("/admin/audit?limit=1000")).get("data");
    List<String> actions = new java.util.ArrayList<>();
    for (JsonNode entry : audit) {
      if (entry.get("target").asText().equals(id)) {
        actions.add(entry.get("action").asText());
        assertThat(entry.get("actorKeyId").asText()).isEqualTo(ApiKeyService.BOOTSTRAP_ID);
        assertThat(entry.toString()).doesNotContain(secret);
      }
    }
    assertThat(actions).containsExactly("key.revoke", "key.update", "key.create");
    JsonNode update =
        audit.findParents("action").stream()
            .filter(e -> e.get("action").asText().equals("key.update"))
            .filter(e -> e.get("target").asText().equals(id))
            .findFirst()
            .orElseThrow();
    assertThat(Json.parse(update.get("before").asText()).get("name").asText())
        .isEqualTo("billing app");
    assertThat(Json.parse(update.get("after").asText()).get("name").asText()).isEqualTo("billing");
  }

  @Test
  void refusesBadKeyRequestsInTheEnvelope() throws Exception {
    Map<String, String> bad =
        Map.of(
            "{}", "name",
            "{\"name\":\"\"}", "name",
            "{\"name\":\"x\",\"role\":\"root\"}", "role",
            "{\"name\":\"x\",\"models\":\"demo-model\"}", "models",
            "{\"name\":\"x\",\"limits\":{\"requestsPerMinute\":0}}", "limits.requestsPerMinute",
            "{\"name\":\"x\",\"limits\":{\"requestsPerMinute\":1.5}}", "limits.requestsPerMinute",
            "{\"name\":\"x\",\"limits\":{\"requestsPerHour\":5}}", "limits.requestsPerHour",
            "{\"name\":\"x\",\"expiresAt\":\"2001-01-01T00:00:00Z\"}", "expiresAt",
            "{\"name\":\"x\",\"expiresAt\":\"tomorrow\"}", "expiresAt",
            "[1,2]", "null");
    for (var entry : bad.entrySet()) {
      try (Response response = post("/admin/keys", entry.getKey())) {
        assertThat(response.code()).as(entry.getKey()).isEqualTo(400);
        JsonNode error = Json.parse(response.body().string()).get("error");
        assertThat(error.get("param").asText()).as(entry.getKey()).isEqualTo(entry.getValue());
      }
    }
    try (Response unknownModel = post("/admin/keys", "{\"name\":\"x\",\"models\":[\"gpt-9\"]}")) {
      assertThat(unknownModel.code()).isEqualTo(404);
    }
    try (Response missing = get("/admin/keys/no-such-key")) {
      assertThat(missing.code()).isEqualTo(404);
      assertThat(body(missing).at("/error/code").asText()).isEqualTo("key_not_found");
    }
    Key key = createKey("{\"name\":\"fixed role\"}");
    try (Response role = patch("/admin/keys/" + key.id(), "{\"role\":\"admin\"}")) {
      assertThat(role.code()).as("a role is not changed by editing").isEqualTo(400);
    }
  }

  /** The 400 of a bad key body: the field it names and what it says. */
  private static void refused(Response response, String body, String param, String message)
      throws Exception {
    try (response) {
      assertThat(response.code()).as(body).isEqualTo(400);
      JsonNode error = Json.parse(response.body().string()).get("error");
      assertThat(error.get("param").asText()).as(body).isEqualTo(param);
      assertThat(error.get("message").asText()).as(body).isEqualTo(message);
      assertThat(error.get("type").asText()).as(body).isEqualTo("invalid_request_error");
    }
  }

  @Test
  void refusesWhatWasOnceCoercedOrIgnoredInANewKey() throws Exception {
    int keysBefore = body(get("/admin/keys")).get("data").size();
    String[][] bad = {
      {"{\"name\":5}", "name", "name must be a string"},
      {"{\"name\":\"" + "n".repeat(201) + "\"}", "name", "name must be at most 200 characters"},
      {"{\"name\":\"x\",\"role\":1}", "role", "role must be a string"},
      {"{\"name\":\"x\",\"role\":\"Admin\"}", "role", "role must be \"user\" or \"admin\""},
      {"{\"name\":\"x\",\"models\":\"x\"}", "models", "models must be an array"},
      {"{\"name\":\"x\",\"models\":[\"demo-model\",1]}", "models[1]", "models[1] must be a string"},
      {
        "{\"name\":\"x\",\"models\":[\"demo-model\",null]}",
        "models[1]",
        "models[1] must be a model name"
      },
      {"{\"name\":\"x\",\"limits\":[]}", "limits", "limits must be an object"},
      {
        "{\"name\":\"x\",\"limits\":{\"tokensPerMinute\":\"5\"}}",
        "limits.tokensPerMinute",
        "limits.tokensPerMinute must be a 32-bit integer"
      },
      {
        "{\"name\":\"x\",\"limits\":{\"concurrentStreams\":3000000000}}",
        "limits.concurrentStreams",
        "limits.concurrentStreams must be a 32-bit integer"
      },
      {
        "{\"name\":\"x\",\"limits\":{\"tokensPerMonth\":0}}",
        "limits.tokensPerMonth",
        "limits.tokensPerMonth must be a positive integer or null"
      },
      {
        "{\"name\":\"x\",\"expiresAt\":1893456000}",
        "expiresAt",
        "expiresAt must be an ISO-8601 date-time string"
      },
      {
        "{\"name\":\"x\",\"expiresAt\":\"\"}",
        "expiresAt",
        "expiresAt must be an ISO-8601 date-time string"
      },
      {
        "{\"name\":\"x\",\"expiresAt\":\"2001-01-01T00:00:00Z\"}",
        "expiresAt",
        "expiresAt must lie in the future"
      },
      // A misspelt field would have made a key for every model.
      {
        "{\"name\":\"x\",\"model\":[\"demo-model\"]}",
        "model",
        "unknown field model; allowed: expiresAt, limits, models, name, role"
      },
    };
    for (String[] request : bad) {
      refused(post("/admin/keys", request[0]), request[0], request[1], request[2]);
    }
    assertThat(body(get("/admin/keys")).get("data")).as("no key was made").hasSize(keysBefore);
  }

  @Test
  void aPatchChangesOnlyWhatItNamesAndNullClearsModelsLimitsAndExpiry() throws Exception {
    Key key =
        createKey(
            "{\"name\":\"patched\",\"models\":[\"demo-model\"],"
                + "\"limits\":{\"tokensPerDay\":500},\"expiresAt\":\"2099-01-01T00:00:00Z\"}");
    String path = "/admin/keys/" + key.id();

    JsonNode renamed = body(patch(path, "{\"name\":\" renamed \"}"));
    assertThat(renamed.get("name").asText()).isEqualTo("renamed");
    assertThat(renamed.get("models").toString()).isEqualTo("[\"demo-model\"]");
    assertThat(renamed.at("/limits/tokensPerDay").asLong()).isEqualTo(500);
    assertThat(renamed.get("expiresAt").asText()).isEqualTo("2099-01-01T00:00:00Z");

    JsonNode cleared = body(patch(path, "{\"models\":null,\"limits\":null,\"expiresAt\":null}"));
    assertThat(cleared.get("name").asText()).isEqualTo("renamed");
    assertThat(cleared.get("models").isNull()).as("every model").isTrue();
    assertThat(cleared.get("limits").size()).as("no limits").isZero();
    assertThat(cleared.get("expiresAt").isNull()).as("no expiry").isTrue();
    assertThat(body(get(path))).isEqualTo(cleared);

    String[][] bad = {
      {"{\"name\":null}", "name", "name must be a non-empty string"},
      {"{\"name\":\"  \"}", "name", "name must be a non-empty string"},
      {"{\"name\":5}", "name", "name must be a string"},
      {
        "{\"role\":\"admin\"}",
        "role",
        "unknown field role; allowed: expiresAt, limits, models, name"
      },
      {"{\"models\":[1]}", "models[0]", "models[0] must be a string"},
      {
        "{\"limits\":{\"requestsPerMinute\":\"5\"}}",
        "limits.requestsPerMinute",
        "limits.requestsPerMinute must be a 32-bit integer"
      },
      {
        "{\"limits\":{\"requestsPerHour\":5}}",
        "limits.requestsPerHour",
        "unknown field limits.requestsPerHour; allowed: concurrentStreams, requestsPerMinute,"
            + " tokensPerDay, tokensPerMinute, tokensPerMonth, weight"
      },
      {
        "{\"expiresAt\":\"tomorrow\"}",
        "expiresAt",
        "expiresAt must be an ISO-8601 date-time string"
      },
    };
    for (String[] request : bad) {
      refused(patch(path, request[0]), request[0], request[1], request[2]);
    }
    try (Response unknownModel = patch(path, "{\"models\":[\"gpt-9\"]}")) {
      assertThat(unknownModel.code()).isEqualTo(404);
    }
    assertThat(body(get(path))).as("nothing refused changed the key").isEqualTo(cleared);
  }

  @Test
  void takesTheBodiesTheConsoleSends() throws Exception {
    // web/js/ops/keys.js: every field of the form, empty ones as null and limits as {}.
    JsonNode created =
        body(
            post(
                "/admin/keys",
                "{\"name\":\"from the console\",\"models\":null,\"limits\":{},\"role\":\"user\"}"));
    assertThat(created.get("models").isNull()).isTrue();
    String path = "/admin/keys/" + created.get("id").asText();
    JsonNode edited =
        body(
            patch(
                path,
                "{\"name\":\"from the console\",\"models\":[\"second-model\"],"
                    + "\"limits\":{\"concurrentStreams\":2},\"expiresAt\":\"2099-06-01T12:00:00.000Z\"}"));
    assertThat(edited.get("models").toString()).isEqualTo("[\"second-model\"]");
    assertThat(edited.at("/limits/concurrentStreams").asInt()).isEqualTo(2);
    assertThat(edited.get("expiresAt").asText()).isEqualTo("2099-06-01T12:00:00Z");
  }

  @Test
  void aKeyLimitedToSomeModelsIsForbiddenTheOthers() throws Exception {
    Key key = createKey("{\"name\":\"demo only\",\"models\":[\"demo-model\"]}");
    try (Response ok = postAs(key.secret(), "/v1/chat/completions", CHAT)) {
      assertThat(ok.code()).isEqualTo(200);
    }
    String second = CHAT.replace("demo-model", "second-model");
    try (Response refused = postAs(key.secret(), "/v1/chat/completions", second)) {
      assertThat(refused.code()).isEqualTo(403);
      JsonNode error = Json.parse(refused.body().string()).get("error");
      assertThat(error.get("code").asText()).isEqualTo("model_not_allowed");
      assertThat(error.get("param").asText()).isEqualTo("model");
    }
    assertThat(UPSTREAM.chatRequests()).as("the refused call never went upstream").hasSize(1);
    JsonNode models = body(getAs(key.secret(), "/v1/models")).get("data");
    assertThat(models).extracting(m -> m.get("id").asText()).containsExactly("demo-model");
    assertThat(body(get("/v1/models")).get("data")).as("the admin key may use both").hasSize(2);
  }

  @Test
  void anEmptyModelsListBlocksAKeyAndNullGivesItEveryModelAgain() throws Exception {
    Key open = createKey("{\"name\":\"open\"}");
    assertThat(body(get("/admin/keys/" + open.id())).get("models").isNull())
        .as("no list: every model, shown as null")
        .isTrue();
    assertThat(body(getAs(open.secret(), "/v1/models")).get("data")).hasSize(2);

    JsonNode emptied = body(patch("/admin/keys/" + open.id(), "{\"models\":[]}"));
    assertThat(emptied.get("models").isArray()).isTrue();
    assertThat(emptied.get("models")).isEmpty();
    assertBlocked(open.secret());

    JsonNode restored = body(patch("/admin/keys/" + open.id(), "{\"models\":null}"));
    assertThat(restored.get("models").isNull()).isTrue();
    try (Response ok = postAs(open.secret(), "/v1/chat/completions", CHAT)) {
      assertThat(ok.code()).isEqualTo(200);
    }
    assertThat(body(getAs(open.secret(), "/v1/models")).get("data")).hasSize(2);
    assertThat(body(getAs(open.secret(), "/api/session")).get("models").isNull()).isTrue();

    JsonNode created = body(post("/admin/keys", "{\"name\":\"blocked\",\"models\":[]}"));
    String blocked = created.get("key").asText();
    assertThat(created.get("models")).isEmpty();
    assertBlocked(blocked);
    JsonNode listed =
        body(get("/admin/keys")).get("data").findParents("id").stream()
            .filter(k -> k.get("id").asText().equals(created.get("id").asText()))
            .findFirst()
            .orElseThrow();
    assertThat(listed.get("models").isArray()).as("[] listed apart from null").isTrue();
    assertThat(listed.get("models")).isEmpty();
    assertThat(UPSTREAM.chatRequests()).as("only the unblocked call went upstream").hasSize(1);
  }

  /** A key that may use no model: it lists none and is refused each one, on every API. */
  private void assertBlocked(String secret) throws Exception {
    assertThat(body(getAs(secret, "/v1/models")).get("data")).isEmpty();
    assertThat(body(getAs(secret, "/api/session")).get("models")).isEmpty();
    for (String model : List.of("demo-model", "second-model")) {
      try (Response refused =
          postAs(secret, "/v1/chat/completions", CHAT.replace("demo-model", model))) {
        assertThat(refused.code()).as(model).isEqualTo(403);
        assertThat(body(refused).at("/error/code").asText()).isEqualTo("model_not_allowed");
      }
    }
    try (Response refused =
        postAs(secret, "/api/chat/messages", "{\"model\":\"demo-model\",\"query\":\"hi\"}")) {
      assertThat(refused.code()).as("the product API too").isEqualTo(403);
    }
  }

  @Test
  void aListedPrefixShowsLittleOfAKeyEvenOfAShortAdminKey() throws Exception {
    Key generated = createKey("{\"name\":\"prefixed\"}");
    String prefix = body(get("/admin/keys/" + generated.id())).get("prefix").asText();
    assertThat(prefix).hasSize(7).isEqualTo(generated.secret().substring(0, 7));

    // ADMIN_KEY is 14 characters: a quarter of it is 3.
    String admin = "/admin/keys/" + ApiKeyService.BOOTSTRAP_ID;
    assertThat(body(get(admin)).get("prefix").asText()).isEqualTo("tes");

    // A row stored under the old rule (10 characters, a third at most) is rewritten at start-up.
    jdbc.sql("UPDATE api_keys SET key_prefix = 'test' WHERE id = ?")
        .param(ApiKeyService.BOOTSTRAP_ID)
        .update();
    keyService.afterSingletonsInstantiated();
    assertThat(body(get(admin)).get("prefix").asText()).isEqualTo("tes");
  }

  @Test
  void keysNeverAppearInLogsNorInClearInTheDatabase(CapturedOutput output) throws Exception {
    Key key = createKey("{\"name\":\"secretive\"}");
    try (Response ok = postAs(key.secret(), "/v1/chat/completions", CHAT)) {
      assertThat(ok.code()).isEqualTo(200);
    }
    sessionCookie(key.secret());
    try (Response wrong = postAs(key.secret() + "x", "/v1/chat/completions", CHAT)) {
      assertThat(wrong.code()).isEqualTo(401);
    }

    assertThat(output.getAll()).doesNotContain(key.secret()).doesNotContain(ADMIN_KEY);

    StringBuilder everything = new StringBuilder();
    for (String table :
        jdbc.sql("SELECT TABLE_NAME FROM INFORMATION_SCHEMA.TABLES WHERE TABLE_SCHEMA = 'PUBLIC'")
            .query(String.class)
            .list()) {
      for (Map<String, Object> row :
          jdbc.sql("SELECT * FROM \"" + table + "\"").query().listOfRows()) {
        everything.append(row).append('\n');
      }
    }
    assertThat(everything).doesNotContain(key.secret()).doesNotContain(ADMIN_KEY);
    String stored =
        jdbc.sql("SELECT key_hash FROM api_keys WHERE id = ?")
            .param(key.id())
            .query(String.class)
            .single();
    assertThat(stored).isEqualTo(sha256(key.secret()));
  }

  private static String sha256(String text) throws Exception {
    return HexFormat.of()
        .formatHex(
            MessageDigest.getInstance("SHA-256").digest(text.getBytes(StandardCharsets.UTF_8)));
  }

  @Test
  void aCookieSessionRefusesStateChangesFromAnotherSite() throws Exception {
    Key key = createKey("{\"name\":\"browser\"}");
    String cookie;
    try (Response login = login(key.secret(), new Request.Builder())) {
      String setCookie = login.header("Set-Cookie");
      assertThat(setCookie)
          .contains("HttpOnly")
          .contains("SameSite=Strict")
          .doesNotContain("Secure");
      cookie = setCookie.substring(0, setCookie.indexOf(';'));
    }
    for (String origin : new String[] {"https://evil.example", null}) {
      Request.Builder request =
          new Request.Builder()
              .url(url("/api/conversations"))
              .header("Cookie", cookie)
              .post(RequestBody.create("{}", JSON));
      if (origin != null) {
        request.header("Origin", origin);
      }
      try (Response refused = SseClient.HTTP.newCall(request.build()).execute()) {
        assertThat(refused.code()).as("Origin %s", origin).isEqualTo(403);
      }
    }
    try (Response same =
        SseClient.HTTP
            .newCall(
                new Request.Builder()
                    .url(url("/api/conversations"))
                    .header("Cookie", cookie)
                    .header("Origin", "http://127.0.0.1:" + port)
                    .post(RequestBody.create("{}", JSON))
                    .build())
            .execute()) {
      assertThat(same.code()).isEqualTo(201);
    }
  }

  @Test
  void theSessionCookieIsSecureBehindATlsProxy() throws Exception {
    try (Response login =
        login(ADMIN_KEY, new Request.Builder().header("X-Forwarded-Proto", "https"))) {
      assertThat(login.code()).isEqualTo(204);
      assertThat(login.header("Set-Cookie")).contains("Secure");
    }
  }
}
