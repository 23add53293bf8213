package io.selfhosted.gateway.ratelimit;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import io.selfhosted.gateway.support.FakeModelService;
import io.selfhosted.gateway.support.FakeModelService.LiveStream;
import io.selfhosted.gateway.support.GatewayIntegrationTest;
import io.selfhosted.gateway.support.Json;
import io.selfhosted.gateway.support.Parallel;
import io.selfhosted.gateway.support.SseClient;
import io.selfhosted.gateway.usage.UsageRecorder;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import okhttp3.Response;
import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;

/** Key limits hold exactly under concurrency, and give back what a request did not use. */
class RateLimitIntegrationTests extends GatewayIntegrationTest {

  @Autowired UsageRecorder usage;

  @Test
  void exactlyTheRequestsPerMinuteOfAKeyPassUnderConcurrency() throws Exception {
    Key key = createKey("{\"name\":\"ten a minute\",\"limits\":{\"requestsPerMinute\":10}}");

    List<Integer> statuses =
        Parallel.run(
            100,
            () -> {
              try (Response response = postAs(key.secret(), "/v1/chat/completions", CHAT)) {
                if (response.code() == 429) {
                  assertThat(response.header("Retry-After")).isNotNull();
                  assertThat(response.header("x-ratelimit-limit-requests")).isEqualTo("10");
                  assertThat(response.header("x-ratelimit-remaining-requests")).isEqualTo("0");
                  JsonNode error = Json.parse(response.body().string()).get("error");
                  assertThat(error.get("code").asText()).isEqualTo("rate_limit_exceeded");
                }
                return response.code();
              }
            });

    assertThat(statuses.stream().filter(s -> s == 200)).hasSize(10);
    assertThat(statuses.stream().filter(s -> s == 429)).hasSize(90);
  }

  @Test
  void successfulAnswersCarryTheRateLimitHeaders() throws Exception {
    Key key =
        createKey(
            "{\"name\":\"headers\",\"limits\":{\"requestsPerMinute\":60,"
                + "\"tokensPerMinute\":100000}}");
    try (Response response = postAs(key.secret(), "/v1/chat/completions", CHAT)) {
      assertThat(response.code()).isEqualTo(200);
      assertThat(response.header("x-ratelimit-limit-requests")).isEqualTo("60");
      assertThat(response.header("x-ratelimit-remaining-requests")).isEqualTo("59");
      assertThat(response.header("x-ratelimit-reset-requests")).matches("\\d+(ms|s)");
      assertThat(response.header("x-ratelimit-limit-tokens")).isEqualTo("100000");
      assertThat(Long.parseLong(response.header("x-ratelimit-remaining-tokens")))
          .isLessThan(100000);
    }
    try (SseClient stream = postStreamAs(key.secret(), CHAT_STREAM)) {
      assertThat(stream.response().header("x-ratelimit-remaining-requests")).isEqualTo("58");
      stream.rest();
    }
  }

  @Test
  void exactlyTheConcurrentStreamsOfAKeyStreamAndTheRestAreRefusedAtOnce() throws Exception {
    Key key = createKey("{\"name\":\"five at once\",\"limits\":{\"concurrentStreams\":5}}");
    List<LiveStream> upstreams = UPSTREAM.holdEveryStream();
    List<SseClient> open = new CopyOnWriteArrayList<>();

    List<Integer> statuses =
        Parallel.openStreams(20, i -> () -> postStreamAs(key.secret(), CHAT_STREAM), open);

    assertThat(statuses.stream().filter(s -> s == 200)).hasSize(5);
    assertThat(statuses.stream().filter(s -> s == 429)).hasSize(15);
    assertThat(upstreams).as("refused streams never reach the model").hasSize(5);

    for (LiveStream live : upstreams) {
      live.token("done");
      live.finish();
    }
    for (SseClient stream : open) {
      stream.rest();
      stream.close();
    }
    UPSTREAM.setDefault(r -> FakeModelService.stream("again"));
    try (Response again = postAs(key.secret(), "/v1/chat/completions", CHAT)) {
      assertThat(again.code()).as("the slots came back when the streams ended").isEqualTo(200);
    }
  }

  @Test
  void aCancelledStreamGivesBackTheTokensItDidNotUse() throws Exception {
    Key key = createKey("{\"name\":\"token budget\",\"limits\":{\"tokensPerMinute\":1000}}");
    String big =
        "{\"model\":\"demo-model\",\"stream\":true,\"max_tokens\":900,"
            + "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    LiveStream live = new LiveStream();
    UPSTREAM.enqueue(live);
    SseClient first = postStreamAs(key.secret(), big);
    assertThat(first.response().code()).isEqualTo(200);
    live.token("one").token("two");
    first.next();

    try (Response second = postAs(key.secret(), "/v1/chat/completions", big)) {
      assertThat(second.code()).as("900 tokens are reserved by the first").isEqualTo(429);
      assertThat(second.header("x-ratelimit-limit-tokens")).isEqualTo("1000");
    }

    first.close();
    assertThat(live.awaitClientGone()).isTrue();

    await()
        .untilAsserted(
            () -> {
              UPSTREAM.setDefault(r -> FakeModelService.stream("fits"));
              try (Response third = postAs(key.secret(), "/v1/chat/completions", big)) {
                assertThat(third.code()).as("the unused reservation came back").isEqualTo(200);
              }
            });
  }

  @Test
  void aKeyOverItsDailyQuotaGetsInsufficientQuota() throws Exception {
    // Each answer of the fake model service counts 7 prompt + 1 completion tokens.
    Key key = createKey("{\"name\":\"daily budget\",\"limits\":{\"tokensPerDay\":12}}");
    UPSTREAM.setDefault(r -> FakeModelService.stream("x"));

    try (Response first = postAs(key.secret(), "/v1/chat/completions", CHAT)) {
      assertThat(first.code()).isEqualTo(200);
    }
    try (Response second = postAs(key.secret(), "/v1/chat/completions", CHAT)) {
      assertThat(second.code()).as("8 of 12 tokens used: still within").isEqualTo(200);
    }
    for (boolean written : new boolean[] {false, true}) {
      if (written) {
        usage.flush();
      }
      try (Response third = postAs(key.secret(), "/v1/chat/completions", CHAT)) {
        assertThat(third.code()).isEqualTo(429);
        assertThat(Long.parseLong(third.header("Retry-After"))).isBetween(1L, 86_400L);
        JsonNode error = Json.parse(third.body().string()).get("error");
        assertThat(error.get("code").asText()).isEqualTo("insufficient_quota");
        assertThat(error.get("type").asText()).isEqualTo("insufficient_quota");
      }
    }
  }

  @Test
  void limitsApplyToTheProductStreamsToo() throws Exception {
    Key key = createKey("{\"name\":\"browser\",\"limits\":{\"requestsPerMinute\":1}}");
    String conversation = body(postAs(key.secret(), "/api/conversations", "{}")).get("id").asText();
    String ask = "{\"model\":\"demo-model\",\"query\":\"hi\"}";
    try (Response first =
        postAs(key.secret(), "/api/conversations/" + conversation + "/messages", ask)) {
      assertThat(first.code()).isEqualTo(202);
      assertThat(first.header("x-ratelimit-remaining-requests")).isEqualTo("0");
    }
    try (Response second =
        postAs(key.secret(), "/api/conversations/" + conversation + "/messages", ask)) {
      assertThat(second.code()).isEqualTo(429);
    }
    assertThat(
            body(getAs(key.secret(), "/api/conversations/" + conversation + "/messages"))
                .get("data"))
        .as("a refused turn stores nothing")
        .hasSize(2);
  }
}
