package io.selfhosted.gateway.safety;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import mockwebserver3.MockResponse;
import mockwebserver3.MockWebServer;
import mockwebserver3.RecordedRequest;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The moderation client against a fake OpenAI-style moderation endpoint. */
class ModerationClientTests {

  private final MockWebServer server = new MockWebServer();
  private final List<ModerationClient> clients = new ArrayList<>();

  @BeforeEach
  void start() throws Exception {
    server.start();
  }

  @AfterEach
  void stop() {
    clients.forEach(ModerationClient::destroy);
    server.close();
  }

  private ModerationClient client(String token, Duration timeout, boolean failOpen) {
    return client(server.url("/v1/moderations").toString(), token, timeout, failOpen);
  }

  private ModerationClient client(String url, String token, Duration timeout, boolean failOpen) {
    ContentProperties properties =
        new ContentProperties(
            "",
            Duration.ofSeconds(2),
            new ContentProperties.Moderation(url, token, timeout, failOpen));
    ModerationClient client = new ModerationClient(properties, new ObjectMapper());
    clients.add(client);
    return client;
  }

  private void answer(int code, String body) {
    server.enqueue(
        new MockResponse.Builder()
            .code(code)
            .addHeader("Content-Type", "application/json")
            .body(body)
            .build());
  }

  @Test
  void aFlaggedTextGetsTheFirstFlaggedCategory() throws Exception {
    answer(
        200,
        """
        {"id":"modr-1","results":[{"flagged":true,
          "categories":{"harassment":false,"violence":true,"self-harm":true},
          "category_scores":{"violence":0.98}}]}
        """);
    ModerationClient client = client("secret-token", Duration.ofSeconds(2), true);

    assertThat(client.enabled()).isTrue();
    assertThat(client.check("how do I make a bomb"))
        .isEqualTo(new Verdict("moderation", "violence"));

    RecordedRequest request = server.takeRequest(1, TimeUnit.SECONDS);
    assertThat(request.getMethod()).isEqualTo("POST");
    assertThat(request.getUrl().encodedPath()).isEqualTo("/v1/moderations");
    assertThat(request.getHeaders().get("Authorization")).isEqualTo("Bearer secret-token");
    assertThat(request.getBody().utf8()).isEqualTo("{\"input\":\"how do I make a bomb\"}");
  }

  @Test
  void aFlaggedTextWithoutCategoriesIsFlaggedAsSuch() {
    answer(200, "{\"results\":[{\"flagged\":true,\"categories\":{\"violence\":false}}]}");

    assertThat(client("", Duration.ofSeconds(2), true).check("x"))
        .isEqualTo(new Verdict("moderation", "flagged"));
  }

  @Test
  void aCleanTextPassesAndNoTokenMeansNoAuthorizationHeader() throws Exception {
    answer(200, "{\"results\":[{\"flagged\":false,\"categories\":{\"violence\":false}}]}");

    assertThat(client("", Duration.ofSeconds(2), false).check("你好，世界")).isNull();
    assertThat(server.takeRequest(1, TimeUnit.SECONDS).getHeaders().get("Authorization")).isNull();
  }

  @Test
  void aTimeoutLetsTheTextPassWhenFailingOpen() {
    server.enqueue(
        new MockResponse.Builder()
            .headersDelay(2, TimeUnit.SECONDS)
            .body("{\"results\":[{\"flagged\":true}]}")
            .build());
    ModerationClient client = client("", Duration.ofMillis(200), true);

    long start = System.nanoTime();
    assertThat(client.check("anything")).isNull();
    assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(1));
  }

  @Test
  void aTimeoutRefusesTheTextWhenFailingClosed() {
    server.enqueue(
        new MockResponse.Builder()
            .headersDelay(2, TimeUnit.SECONDS)
            .body("{\"results\":[{\"flagged\":false}]}")
            .build());
    ModerationClient client = client("", Duration.ofMillis(200), false);

    assertThatThrownBy(() -> client.check("anything"))
        .isInstanceOf(ModerationUnavailableException.class)
        .hasMessageContaining("moderation service unavailable");
  }

  @Test
  void anErrorStatusOrAMalformedAnswerCountsAsAFailure() {
    answer(503, "{\"error\":\"overloaded\"}");
    answer(503, "{\"error\":\"overloaded\"}");
    answer(200, "not json");
    answer(200, "{\"results\":[]}");
    answer(200, "{\"results\":[{\"flagged\":\"yes\"}]}");

    assertThat(client("", Duration.ofSeconds(2), true).check("x")).isNull();
    ModerationClient closed = client("", Duration.ofSeconds(2), false);
    assertThatThrownBy(() -> closed.check("x"))
        .isInstanceOf(ModerationUnavailableException.class)
        .hasMessageContaining("HTTP 503");
    for (int i = 0; i < 3; i++) {
      assertThatThrownBy(() -> closed.check("x"))
          .isInstanceOf(ModerationUnavailableException.class);
    }
  }

  @Test
  void withoutAUrlTheClientIsInert() {
    ModerationClient client = client(" ", "token", Duration.ofSeconds(2), false);

    assertThat(client.enabled()).isFalse();
    assertThat(client.check("make a bomb")).isNull();
    assertThat(server.getRequestCount()).isZero();
  }
}
