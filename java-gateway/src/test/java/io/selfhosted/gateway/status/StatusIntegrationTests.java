package io.selfhosted.gateway.status;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.selfhosted.gateway.pipeline.DegradationLog;
import io.selfhosted.gateway.support.FakeModelService.LiveStream;
import io.selfhosted.gateway.support.GatewayIntegrationTest;
import io.selfhosted.gateway.support.SseClient;
import okhttp3.Response;
import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;

/**
 * What the ops console reads: live streams, rates, replicas, breakers, switches, history, answers
 * continued.
 */
class StatusIntegrationTests extends GatewayIntegrationTest {

  @Autowired private ServiceStatus status;
  @Autowired private DegradationLog degradations;

  @Test
  void showsRunningStreamsRatesReplicasBreakersAndSwitches() throws Exception {
    status.sample();
    LiveStream live = new LiveStream();
    UPSTREAM.enqueue(live);
    try (SseClient stream = postStream("/v1/chat/completions", CHAT_STREAM)) {
      live.token("one");
      stream.next();
      JsonNode during = body(get("/admin/status"));
      assertThat(during.at("/replicas/0/name").asText()).isEqualTo(UPSTREAM.url());
      assertThat(during.at("/replicas/0/ready").asBoolean()).isTrue();
      assertThat(during.at("/replicas/0/outstanding").asInt()).isEqualTo(1);
      assertThat(during.at("/replicas/0/breaker").asText()).isEqualTo("closed");
      live.token("two").finish();
      stream.rest();
    }
    try (Response response =
        put("/admin/switches/max_tokens", "{\"enabled\":true,\"value\":100}")) {
      assertThat(response.code()).isEqualTo(200);
    }
    status.sample();

    JsonNode after = body(get("/admin/status"));
    assertThat(after.at("/current/tokensPerSecond").asDouble()).isPositive();
    assertThat(after.at("/current/requestsPerSecond").asDouble()).isPositive();
    assertThat(after.at("/current/errorRate").asDouble()).isZero();
    assertThat(after.get("history").size()).isGreaterThanOrEqualTo(2);
    assertThat(after.get("breakers").toString()).contains("model:demo-model");
    assertThat(after.at("/activeSwitches/0/kind").asText()).isEqualTo("max_tokens");
  }

  @Test
  void countsTheAnswersContinuedOnAnotherReplica() throws Exception {
    long before = body(get("/admin/status")).get("streamsContinued").asLong();
    // what the stream pipeline records when an answer moves to another replica (the splice itself
    // is tested in upstream.ContinuationTests and across real tiers in tests/test_continuation.py)
    degradations.record(null, "fallback", "stream_continued", "replica-a: connection lost");
    degradations.record(null, "fallback", "replica_failover", "not a continuation");

    assertThat(body(get("/admin/status")).get("streamsContinued").asLong()).isEqualTo(before + 1);
  }

  @Test
  void usersMayNotReadIt() throws Exception {
    Key user = createKey("{\"name\":\"user\"}");
    try (Response response = getAs(user.secret(), "/admin/status")) {
      assertThat(response.code()).isEqualTo(403);
    }
  }
}
