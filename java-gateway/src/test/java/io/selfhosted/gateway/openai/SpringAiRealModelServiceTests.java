package io.selfhosted.gateway.openai;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;

import io.selfhosted.gateway.support.SseClient;
import java.io.IOException;
import java.time.Duration;
import java.time.Instant;
import okhttp3.Request;
import okhttp3.Response;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIf;
import org.springframework.ai.openai.api.OpenAiApi.ChatCompletionRequest.ToolChoiceBuilder;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;

/**
 * The Spring AI tool round trip ({@link SpringAiRoundTrip}) against the REAL demo model service
 * through a real gateway: the model service that {@code python -m harness.services --model-service}
 * starts beside the tests (as {@code make test-java} does), found through {@code
 * GATEWAY_TEST_MODEL_URL} and {@code GATEWAY_TEST_MODEL_TOKEN}.
 *
 * <p>Without those variables it is reported as skipped, with the reason, unless the system property
 * {@code gateway.test.model-service.required} is true (the Makefile sets it): then it fails.
 */
@EnabledIf(
    value = "modelServiceGivenOrRequired",
    disabledReason =
        "no real model service: GATEWAY_TEST_MODEL_URL is not set (run the tests through"
            + " `python -m harness.services --model-service -- mvn ...`, as make test-java does)")
@SpringBootTest(webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT)
class SpringAiRealModelServiceTests {

  private static final String MODEL_URL = System.getenv("GATEWAY_TEST_MODEL_URL");
  private static final String MODEL_TOKEN = System.getenv("GATEWAY_TEST_MODEL_TOKEN");
  private static final String ADMIN_KEY = "real-model-admin-key";
  private static final Duration READY_WITHIN = Duration.ofMinutes(4);

  @LocalServerPort private int port;

  @DynamicPropertySource
  static void gatewayProperties(DynamicPropertyRegistry registry) {
    // Not started at all without a model service: @BeforeAll stops first.
    registry.add("gateway.upstream.urls", () -> MODEL_URL);
    registry.add("gateway.upstream.token", () -> MODEL_TOKEN);
    registry.add("gateway.auth.admin-api-key", () -> ADMIN_KEY);
    registry.add("spring.datasource.url", () -> "jdbc:h2:mem:gateway-real-model;DB_CLOSE_DELAY=-1");
  }

  /** Run when there is a model service, or when there must be one (then fail without it). */
  static boolean modelServiceGivenOrRequired() {
    return given() || Boolean.getBoolean("gateway.test.model-service.required");
  }

  private static boolean given() {
    return MODEL_URL != null && !MODEL_URL.isBlank();
  }

  @BeforeAll
  static void theModelServiceIsThereAndReady() throws Exception {
    if (!given()) {
      fail(
          "gateway.test.model-service.required is set but GATEWAY_TEST_MODEL_URL is not: run the"
              + " tests through `python -m harness.services --model-service -- mvn ...`");
    }
    // The harness starts the model service beside the build; it may still be warming up.
    Instant deadline = Instant.now().plus(READY_WITHIN);
    while (!ready()) {
      if (Instant.now().isAfter(deadline)) {
        fail("the model service at " + MODEL_URL + " was not ready within " + READY_WITHIN);
      }
      Thread.sleep(500);
    }
  }

  private static boolean ready() {
    Request request = new Request.Builder().url(MODEL_URL + "/ready").build();
    try (Response response = SseClient.HTTP.newCall(request).execute()) {
      return response.code() == 200;
    } catch (IOException notYet) {
      return false;
    }
  }

  @Test
  void theDemoModelCallsARequiredToolAndAnswersFromItsResult() {
    SpringAiRoundTrip.Result result =
        SpringAiRoundTrip.run(
            SpringAiRoundTrip.client("http://127.0.0.1:" + port, ADMIN_KEY, "demo-model"),
            "required");
    assertThat(result.cities()).hasSize(1);
    assertThat(result.answer()).isNotBlank();
  }

  @Test
  void theDemoModelCallsANamedTool() {
    SpringAiRoundTrip.Result result =
        SpringAiRoundTrip.run(
            SpringAiRoundTrip.client("http://127.0.0.1:" + port, ADMIN_KEY, "demo-model"),
            ToolChoiceBuilder.function("currentWeather"));
    assertThat(result.cities()).hasSize(1);
  }
}
