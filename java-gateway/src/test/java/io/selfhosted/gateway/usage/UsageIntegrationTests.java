package io.selfhosted.gateway.usage;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.selfhosted.gateway.support.FakeModelService;
import io.selfhosted.gateway.support.FakeModelService.LiveStream;
import io.selfhosted.gateway.support.GatewayIntegrationTest;
import io.selfhosted.gateway.support.SseClient;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import okhttp3.MediaType;
import okhttp3.RequestBody;
import okhttp3.Response;
import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;

/** One usage record per generation, however it ended, and totals by key and by model. */
class UsageIntegrationTests extends GatewayIntegrationTest {

  private static final MediaType JSON = MediaType.get("application/json");

  @Autowired UsageRecorder recorder;

  private SseClient stream(Key key, String requestId) throws Exception {
    return openStream(
        requestAs(key.secret(), "/v1/chat/completions")
            .header("X-Request-Id", requestId)
            .post(RequestBody.create(CHAT_STREAM, JSON))
            .build());
  }

  @Test
  void recordsCompletedCancelledAndFailedStreams() throws Exception {
    Key key = createKey("{\"name\":\"accounted\"}");
    UPSTREAM.enqueue(FakeModelService.stream("Hello", " world"));
    try (SseClient completed = stream(key, "usage-completed")) {
      completed.rest();
    }
    LiveStream live = new LiveStream();
    UPSTREAM.enqueue(live);
    SseClient cancelled = stream(key, "usage-cancelled");
    live.token("one").token("two");
    cancelled.next();
    cancelled.next();
    cancelled.close();
    assertThat(live.awaitClientGone()).isTrue();
    UPSTREAM.enqueue(FakeModelService.error(400, "invalid_request_error", "bad", "too long"));
    try (SseClient failed = stream(key, "usage-failed")) {
      assertThat(failed.response().code()).isEqualTo(400);
    }
    recorder.flush();

    JsonNode usage = body(get("/admin/usage?keyId=" + key.id()));

    List<String> seen = new ArrayList<>();
    for (JsonNode record : usage.get("data")) {
      seen.add(record.get("requestId").asText() + ":" + record.get("status").asText());
      assertThat(record.get("keyId").asText()).isEqualTo(key.id());
      assertThat(record.get("model").asText()).isEqualTo("demo-model");
    }
    assertThat(seen)
        .containsExactlyInAnyOrder(
            "usage-completed:completed", "usage-cancelled:cancelled", "usage-failed:failed");
    JsonNode completed = find(usage, "usage-completed");
    assertThat(completed.get("promptTokens").asInt()).as("as the upstream counted").isEqualTo(7);
    assertThat(completed.get("completionTokens").asInt()).isEqualTo(2);
    assertThat(completed.get("finishReason").asText()).isEqualTo("stop");
    assertThat(completed.get("ttftMs").isNumber()).isTrue();
    assertThat(completed.get("replica").asText()).isEqualTo(UPSTREAM.url());
    JsonNode cancelledRecord = find(usage, "usage-cancelled");
    assertThat(cancelledRecord.get("completionTokens").asInt())
        .as("counted by the gateway: the upstream never reported usage")
        .isEqualTo(2);
    assertThat(cancelledRecord.get("finishReason").asText()).isEqualTo("cancelled");
    assertThat(find(usage, "usage-failed").get("ttftMs").isNull()).isTrue();

    JsonNode total = usage.get("total");
    assertThat(total.get("requests").asInt()).isEqualTo(3);
    assertThat(total.get("completed").asInt()).isEqualTo(1);
    assertThat(total.get("cancelled").asInt()).isEqualTo(1);
    assertThat(total.get("failed").asInt()).isEqualTo(1);
  }

  private static JsonNode find(JsonNode usage, String requestId) {
    for (JsonNode record : usage.get("data")) {
      if (record.get("requestId").asText().equals(requestId)) {
        return record;
      }
    }
    throw new AssertionError("no usage record for " + requestId);
  }

  @Test
  void totalsGroupByKeyAndByModelWithinATimeWindow() throws Exception {
    Instant from = Instant.now().minusSeconds(1);
    Key a = createKey("{\"name\":\"team a\"}");
    Key b = createKey("{\"name\":\"team b\"}");
    for (Key key : List.of(a, a, b)) {
      try (Response response = postAs(key.secret(), "/v1/chat/completions", CHAT)) {
        assertThat(response.code()).isEqualTo(200);
      }
    }
    recorder.flush();

    JsonNode byKey = body(get("/admin/usage?groupBy=key&from=" + from));
    JsonNode groupA = group(byKey, a.id());
    JsonNode groupB = group(byKey, b.id());
    // The fake model service reports 7 prompt tokens and one per delta (4 by default).
    assertThat(groupA.get("requests").asInt()).isEqualTo(2);
    assertThat(groupA.get("totalTokens").asInt()).isEqualTo(22);
    assertThat(groupB.get("requests").asInt()).isEqualTo(1);
    assertThat(groupB.get("totalTokens").asInt()).isEqualTo(11);

    JsonNode byModel = body(get("/admin/usage?groupBy=model&from=" + from + "&keyId=" + a.id()));
    assertThat(group(byModel, "demo-model").get("totalTokens").asInt()).isEqualTo(22);

    JsonNode before = body(get("/admin/usage?keyId=" + a.id() + "&to=" + from));
    assertThat(before.get("total").get("requests").asInt()).as("outside the window").isZero();

    JsonNode own = body(getAs(b.secret(), "/api/usage"));
    assertThat(own.get("total").get("requests").asInt())
        .as("a key sees only its own usage")
        .isEqualTo(1);
    assertThat(own.get("data").get(0).get("keyId").asText()).isEqualTo(b.id());
  }

  private static JsonNode group(JsonNode usage, String name) {
    for (JsonNode group : usage.get("groups")) {
      if (group.get("group").asText().equals(name)) {
        return group;
      }
    }
    throw new AssertionError("no group " + name + " in " + usage);
  }

  @Test
  void refusesBadQueriesInTheEnvelope() throws Exception {
    for (String query :
        List.of(
            "from=yesterday",
            "to=2026-13-01T00:00:00Z",
            "groupBy=colour",
            "limit=0",
            "limit=many",
            "from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z")) {
      try (Response response = get("/admin/usage?" + query)) {
        assertThat(response.code()).as(query).isEqualTo(400);
        assertThat(body(response).at("/error/type").asText()).isEqualTo("invalid_request_error");
      }
    }
    try (Response response = get("/api/usage?groupBy=key")) {
      assertThat(response.code()).isEqualTo(400);
    }
  }
}
