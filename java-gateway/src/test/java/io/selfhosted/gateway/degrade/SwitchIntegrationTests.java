package io.selfhosted.gateway.degrade;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import io.selfhosted.gateway.support.GatewayIntegrationTest;
import io.selfhosted.gateway.support.Json;
import io.selfhosted.gateway.support.SseClient;
import java.time.Duration;
import java.util.List;
import okhttp3.Response;
import org.junit.jupiter.api.Test;

/** Each operator switch end to end: flipped through the admin API, seen by the next request. */
class SwitchIntegrationTests extends GatewayIntegrationTest {

  @org.springframework.beans.factory.annotation.Autowired
  private io.selfhosted.gateway.usage.UsageRecorder usage;

  private static final String ASK = "{\"model\":\"demo-model\",\"query\":\"你好\"}";

  private void turnOn(String kind, String json) throws Exception {
    try (Response response = put("/admin/switches/" + kind, json)) {
      assertThat(response.code()).as(response.peekBody(2000).string()).isEqualTo(200);
    }
  }

  private void turnOff(String kind, String query) throws Exception {
    try (Response response = delete("/admin/switches/" + kind + query)) {
      assertThat(response.code()).isEqualTo(200);
      assertThat(Json.parse(response.body().string()).get("enabled").asBoolean()).isFalse();
    }
  }

  /** The content of a whole /v1 reply, with its X-Degraded header (null when not degraded). */
  private record Reply(int status, String content, String degraded, JsonNode body) {}

  private Reply chat(String json) throws Exception {
    try (Response response = post("/v1/chat/completions", json)) {
      JsonNode body = Json.parse(response.body().string());
      return new Reply(
          response.code(),
          body.path("choices").path(0).path("message").path("content").asText(null),
          response.header("X-Degraded"),
          body);
    }
  }

  /** The product stream's events of one turn. */
  private List<SseClient.Event> ask() throws Exception {
    try (SseClient stream = postStream("/api/chat/messages", ASK)) {
      return stream.rest();
    }
  }

  private static JsonNode finish(List<SseClient.Event> events) {
    SseClient.Event last = events.get(events.size() - 1);
    assertThat(last.event()).isEqualTo("finish");
    return Json.parse(last.data());
  }

  private static String text(List<SseClient.Event> events) {
    StringBuilder text = new StringBuilder();
    for (SseClient.Event event : events) {
      if ("message".equals(event.event())) {
        text.append(Json.parse(event.data()).get("text").asText());
      }
    }
    return text.toString();
  }

  @Test
  void maintenanceAnswersEveryApiWithItsMessageUntilTurnedOff() throws Exception {
    turnOn("maintenance", "{\"enabled\":true,\"message\":\"Back at 17:00.\"}");

    Reply reply = chat(CHAT);
    assertThat(reply.status()).isEqualTo(200);
    assertThat(reply.content()).isEqualTo("Back at 17:00.");
    assertThat(reply.degraded()).isEqualTo("maintenance");

    try (SseClient stream = postStream("/v1/chat/completions", CHAT_STREAM)) {
      assertThat(stream.response().header("X-Degraded")).isEqualTo("maintenance");
      List<SseClient.Event> events = stream.rest();
      assertThat(events.get(0).data()).contains("Back at 17:00.");
      assertThat(events.get(events.size() - 1).data()).isEqualTo("[DONE]");
    }

    List<SseClient.Event> events = ask();
    assertThat(text(events)).isEqualTo("Back at 17:00.");
    assertThat(finish(events).get("degraded").asBoolean()).isTrue();
    assertThat(finish(events).get("degraded_reason").asText()).isEqualTo("maintenance");
    assertThat(UPSTREAM.chatRequestCount()).as("nothing reached the model").isZero();
    usage.flush();
    JsonNode records = body(get("/admin/usage?limit=3")).get("data");
    for (JsonNode record : records) {
      assertThat(record.get("degraded").asText()).isEqualTo("maintenance");
      assertThat(record.get("completionTokens").asInt()).isZero();
    }

    turnOff("maintenance", "");
    Reply normal = chat(CHAT);
    assertThat(normal.content()).isEqualTo("Hello, world!");
    assertThat(normal.degraded()).isNull();
    assertThat(finish(ask()).get("degraded").asBoolean()).isFalse();
  }

  @Test
  void maintenanceAnswersAreStoredAsDegradedAndKeptOutOfTheModelsContext() throws Exception {
    String conversation;
    turnOn("maintenance", "{\"enabled\":true,\"message\":\"Back soon.\"}");
    try (SseClient stream = postStream("/api/chat/messages", ASK)) {
      conversation = stream.response().header("X-Conversation-Id");
      stream.rest();
    }
    turnOff("maintenance", "");
    try (SseClient stream =
        postStream(
            "/api/chat/messages",
            "{\"model\":\"demo-model\",\"conversationId\":\""
                + conversation
                + "\",\"query\":\"still there?\"}")) {
      assertThat(text(stream.rest())).isEqualTo("Hello, world!");
    }
    JsonNode sent = Json.parse(UPSTREAM.chatRequests().get(0).getBody().utf8());
    assertThat(sent.get("messages").toString()).doesNotContain("Back soon.").doesNotContain("你好");
    assertThat(sent.get("messages").size()).as("system prompt and the new question").isEqualTo(2);

    JsonNode stored = body(get("/api/conversations/" + conversation + "/messages")).get("data");
    assertThat(stored.get(1).get("content").asText()).isEqualTo("Back soon.");
    assertThat(stored.get(1).get("degraded").asBoolean()).isTrue();
    assertThat(stored.get(1).get("degradedReason").asText()).isEqualTo("maintenance");
    assertThat(stored.get(3).get("degraded").asBoolean()).isFalse();
  }

  @Test
  void maintenanceWithoutAMessageUsesThePoliteDefault() throws Exception {
    turnOn("maintenance", "{\"enabled\":true}");
    assertThat(chat(CHAT).content()).contains("maintenance");
  }

  @Test
  void streamingOffServesAStreamFromOneWholeReply() throws Exception {
    turnOn("streaming_off", "{\"enabled\":true,\"reason\":\"proxy trouble\"}");

    try (SseClient stream = postStream("/v1/chat/completions", CHAT_STREAM)) {
      assertThat(stream.response().header("X-Degraded")).isEqualTo("streaming_off");
      List<SseClient.Event> events = stream.rest();
      assertThat(events).hasSize(2); // the whole text with its finish reason, then [DONE]
      assertThat(Json.parse(events.get(0).data()).at("/choices/0/delta/content").asText())
          .isEqualTo("Hello, world!");
    }
    assertThat(
            Json.parse(UPSTREAM.chatRequests().get(0).getBody().utf8()).get("stream").asBoolean())
        .isFalse();

    List<SseClient.Event> events = ask();
    assertThat(events.stream().filter(e -> "message".equals(e.event()))).hasSize(1);
    assertThat(text(events)).isEqualTo("Hello, world!");
    assertThat(finish(events).get("degraded_reason").asText()).isEqualTo("streaming_off");
    assertThat(finish(events).at("/usage/completion_tokens").asInt()).isEqualTo(4);

    Reply whole = chat(CHAT);
    assertThat(whole.degraded()).as("a whole reply is not degraded by it").isNull();

    turnOff("streaming_off", "");
    try (SseClient stream = postStream("/v1/chat/completions", CHAT_STREAM)) {
      assertThat(stream.response().header("X-Degraded")).isNull();
      stream.rest();
    }
    assertThat(
            Json.parse(UPSTREAM.chatRequests().get(3).getBody().utf8()).get("stream").asBoolean())
        .isTrue();
  }

  @Test
  void aRoutedModelIsServedByItsTarget() throws Exception {
    turnOn(
        "model_route", "{\"enabled\":true,\"model\":\"demo-model\",\"target\":\"second-model\"}");

    Reply reply = chat(CHAT);
    assertThat(reply.content()).isEqualTo("Hello, world!");
    assertThat(reply.degraded()).isEqualTo("model_routed");
    assertThat(reply.body().get("model").asText())
        .as("the client's name stays")
        .isEqualTo("demo-model");
    assertThat(Json.parse(UPSTREAM.chatRequests().get(0).getBody().utf8()).get("model").asText())
        .isEqualTo("second-model");

    turnOff("model_route", "?model=demo-model");
    chat(CHAT);
    assertThat(Json.parse(UPSTREAM.chatRequests().get(1).getBody().utf8()).get("model").asText())
        .isEqualTo("demo-model");
  }

  @Test
  void aMaxTokensCapLowersLargerRequestsOnly() throws Exception {
    turnOn("max_tokens", "{\"enabled\":true,\"value\":5}");

    Reply capped =
        chat(
            "{\"model\":\"demo-model\",\"max_tokens\":200,"
                + "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    assertThat(capped.degraded()).isEqualTo("max_tokens_capped");
    Reply small =
        chat(
            "{\"model\":\"demo-model\",\"max_tokens\":3,"
                + "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    assertThat(small.degraded()).isNull();
    assertThat(
            Json.parse(UPSTREAM.chatRequests().get(0).getBody().utf8()).get("max_tokens").asInt())
        .isEqualTo(5);
    assertThat(
            Json.parse(UPSTREAM.chatRequests().get(1).getBody().utf8()).get("max_tokens").asInt())
        .isEqualTo(3);

    // A model's own cap wins over the global one.
    turnOn("max_tokens", "{\"enabled\":true,\"value\":2,\"model\":\"demo-model\"}");
    chat(CHAT);
    assertThat(
            Json.parse(UPSTREAM.chatRequests().get(2).getBody().utf8()).get("max_tokens").asInt())
        .isEqualTo(2);
  }

  @Test
  void aDisabledModelIsRefusedAndOthersStillWork() throws Exception {
    turnOn("model_disabled", "{\"enabled\":true,\"model\":\"demo-model\"}");

    Reply refused = chat(CHAT);
    assertThat(refused.status()).isEqualTo(503);
    assertThat(refused.body().at("/error/code").asText()).isEqualTo("model_disabled");
    assertThat(refused.degraded()).isEqualTo("model_disabled");
    Reply other =
        chat("{\"model\":\"second-model\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    assertThat(other.status()).isEqualTo(200);
    assertThat(UPSTREAM.chatRequestCount()).isEqualTo(1);

    turnOff("model_disabled", "?model=demo-model");
    assertThat(chat(CHAT).status()).isEqualTo(200);
  }

  @Test
  void readOnlyRefusesGenerationsButHistoryStaysReadable() throws Exception {
    assertThat(text(ask())).isEqualTo("Hello, world!");
    turnOn("read_only", "{\"enabled\":true}");

    Reply refused = chat(CHAT);
    assertThat(refused.status()).isEqualTo(503);
    assertThat(refused.body().at("/error/code").asText()).isEqualTo("read_only");
    try (Response product = post("/api/chat/messages", ASK)) {
      assertThat(product.code()).isEqualTo(503);
    }
    try (Response list = get("/api/conversations")) {
      assertThat(list.code()).isEqualTo(200);
    }
    turnOff("read_only", "");
    assertThat(chat(CHAT).status()).isEqualTo(200);
  }

  @Test
  void anExpiringSwitchRevertsByItselfAndTheExpiryIsAudited() throws Exception {
    turnOn("maintenance", "{\"enabled\":true,\"ttlSeconds\":1}");
    assertThat(chat(CHAT).degraded()).isEqualTo("maintenance");

    await()
        .atMost(Duration.ofSeconds(5))
        .untilAsserted(() -> assertThat(chat(CHAT).degraded()).isNull());
    JsonNode switches = body(get("/admin/switches"));
    JsonNode maintenance = null;
    for (JsonNode s : switches.get("data")) {
      if (s.get("kind").asText().equals("maintenance")) {
        maintenance = s;
      }
    }
    assertThat(maintenance.get("active").asBoolean()).isFalse();
    await()
        .atMost(Duration.ofSeconds(5))
        .untilAsserted(
            () ->
                assertThat(body(get("/admin/audit?action=switch.expire")).get("data"))
                    .isNotEmpty());
  }

  @Test
  void theSharedContractsValueFormWorksToo() throws Exception {
    turnOn("maintenance", "{\"value\":true}");
    assertThat(chat(CHAT).degraded()).isEqualTo("maintenance");
    turnOn("maintenance", "{\"value\":false}");
    assertThat(chat(CHAT).degraded()).isNull();

    turnOn("max_tokens", "{\"value\":5}");
    chat(
        "{\"model\":\"demo-model\",\"max_tokens\":50,"
            + "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    assertThat(
            Json.parse(UPSTREAM.chatRequests().get(1).getBody().utf8()).get("max_tokens").asInt())
        .isEqualTo(5);
    turnOn("max_tokens", "{\"value\":false}");

    turnOn("model_route:demo-model", "{\"value\":\"second-model\"}");
    assertThat(chat(CHAT).degraded()).isEqualTo("model_routed");
    assertThat(Json.parse(UPSTREAM.chatRequests().get(2).getBody().utf8()).get("model").asText())
        .isEqualTo("second-model");
    turnOff("model_route:demo-model", "");
    assertThat(chat(CHAT).degraded()).isNull();
  }

  @Test
  void switchChangesAreAuditedAndListed() throws Exception {
    turnOn("max_tokens", "{\"enabled\":true,\"value\":64,\"reason\":\"GPU shortage\"}");
    JsonNode list = body(get("/admin/switches"));
    assertThat(list.get("data").toString())
        .contains("\"kind\":\"max_tokens\"")
        .contains("\"value\":64")
        .contains("GPU shortage")
        .contains("\"kind\":\"maintenance\""); // never set, shown off
    JsonNode audit = body(get("/admin/audit?action=switch.set"));
    assertThat(audit.get("data").get(0).get("target").asText()).isEqualTo("max_tokens");
  }

  @Test
  void badSwitchRequestsGetClearErrors() throws Exception {
    record Case(String kind, String json, int status, String param) {}
    List<Case> cases =
        List.of(
            new Case("no_such_switch", "{\"enabled\":true}", 404, "kind"),
            new Case("maintenance", "{}", 400, "enabled"),
            new Case("maintenance", "{\"enabled\":\"yes\"}", 400, "enabled"),
            new Case("maintenance", "[]", 400, null),
            new Case("maintenance", "{\"enabled\":true,\"model\":\"demo-model\"}", 400, "model"),
            new Case("maintenance", "{\"enabled\":true,\"colour\":1}", 400, "colour"),
            new Case("model_route", "{\"enabled\":true,\"target\":\"second-model\"}", 400, "model"),
            new Case("model_route", "{\"enabled\":true,\"model\":\"demo-model\"}", 400, "target"),
            new Case(
                "model_route",
                "{\"enabled\":true,\"model\":\"demo-model\",\"target\":\"nope\"}",
                400,
                "target"),
            new Case(
                "model_route",
                "{\"enabled\":true,\"model\":\"demo-model\",\"target\":\"demo-model\"}",
                400,
                "target"),
            new Case("model_disabled", "{\"enabled\":true,\"model\":\"nope\"}", 400, "model"),
            new Case("max_tokens", "{\"enabled\":true}", 400, "value"),
            new Case("max_tokens", "{\"enabled\":true,\"value\":0}", 400, "value"),
            new Case("maintenance", "{\"enabled\":true,\"value\":3}", 400, "value"),
            new Case(
                "maintenance",
                "{\"enabled\":true,\"expiresAt\":\"2001-01-01T00:00:00Z\"}",
                400,
                "expiresAt"),
            new Case("maintenance", "{\"enabled\":true,\"expiresAt\":\"soon\"}", 400, "expiresAt"),
            new Case("maintenance", "{\"enabled\":true,\"ttlSeconds\":-1}", 400, "ttlSeconds"),
            new Case(
                "maintenance",
                "{\"enabled\":true,\"message\":\"" + "x".repeat(2001) + "\"}",
                400,
                "message"));
    for (Case c : cases) {
      try (Response response = put("/admin/switches/" + c.kind(), c.json())) {
        JsonNode body = Json.parse(response.body().string());
        assertThat(response.code()).as(c.toString()).isEqualTo(c.status());
        assertThat(body.at("/error/param").asText(null)).as(c.toString()).isEqualTo(c.param());
      }
    }
    assertThat(body(get("/admin/switches")).get("data").toString())
        .doesNotContain("\"enabled\":true");
  }

  @Test
  void switchValuesOfTheWrongTypeAreRefusedNotCoerced() throws Exception {
    record Case(String kind, String json, String param) {}
    for (Case c :
        List.of(
            new Case("maintenance", "{\"enabled\":1}", "enabled"),
            new Case("maintenance", "{\"enabled\":\"true\"}", "enabled"),
            new Case("maintenance", "{\"enabled\":true,\"ttlSeconds\":1.5}", "ttlSeconds"),
            new Case("maintenance", "{\"enabled\":true,\"ttlSeconds\":\"60\"}", "ttlSeconds"),
            new Case("maintenance", "{\"enabled\":true,\"reason\":5}", "reason"),
            new Case("maintenance", "{\"enabled\":true,\"expiresAt\":5}", "expiresAt"),
            new Case("max_tokens", "{\"enabled\":true,\"value\":\"64\"}", "value"),
            new Case("max_tokens", "{\"enabled\":true,\"value\":64.5}", "value"),
            new Case("maintenance", "{\"value\":\"" + "x".repeat(2001) + "\"}", "message"),
            new Case(
                "model_route:demo-model", "{\"value\":true,\"model\":\"demo-model\"}", "model"))) {
      try (Response response = put("/admin/switches/" + c.kind(), c.json())) {
        JsonNode body = Json.parse(response.body().string());
        assertThat(response.code()).as(c.toString()).isEqualTo(400);
        assertThat(body.at("/error/param").asText(null)).as(c.toString()).isEqualTo(c.param());
      }
    }
    assertThat(body(get("/admin/switches")).get("data").toString())
        .doesNotContain("\"enabled\":true");
  }

  @Test
  void onlyAdminsMayReadOrFlipSwitches() throws Exception {
    Key user = createKey("{\"name\":\"user\"}");
    try (Response response = getAs(user.secret(), "/admin/switches")) {
      assertThat(response.code()).isEqualTo(403);
    }
    try (Response response =
        SseClient.HTTP
            .newCall(
                requestAs(user.secret(), "/admin/switches/maintenance")
                    .put(okhttp3.RequestBody.create("{\"enabled\":true}", null))
                    .build())
            .execute()) {
      assertThat(response.code()).isEqualTo(403);
    }
    try (Response response =
        SseClient.HTTP
            .newCall(new okhttp3.Request.Builder().url(url("/admin/switches")).build())
            .execute()) {
      assertThat(response.code()).isEqualTo(401);
    }
    assertThat(chat(CHAT).degraded()).isNull();
  }
}
