package io.selfhosted.gateway.support;

import com.fasterxml.jackson.databind.JsonNode;
import io.github.resilience4j.circuitbreaker.CircuitBreaker;
import io.selfhosted.gateway.degrade.Switches;
import io.selfhosted.gateway.upstream.Breakers;
import java.io.IOException;
import okhttp3.MediaType;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import org.junit.jupiter.api.BeforeEach;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.autoconfigure.actuate.observability.AutoConfigureObservability;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalServerPort;
import org.springframework.jdbc.core.JdbcTemplate;
import org.springframework.test.context.DynamicPropertyRegistry;
import org.springframework.test.context.DynamicPropertySource;

/**
 * The whole gateway on a random port in front of one fake model service. Subclasses share one
 * application context (same properties), so the suite starts Spring once.
 */
@AutoConfigureObservability
@SpringBootTest(webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT)
public abstract class GatewayIntegrationTest {

  public static final String ADMIN_KEY = "test-admin-key";
  protected static final FakeModelService UPSTREAM = new FakeModelService();
  private static final MediaType JSON = MediaType.get("application/json");

  @LocalServerPort protected int port;

  @DynamicPropertySource
  static void gatewayProperties(DynamicPropertyRegistry registry) {
    registry.add("gateway.upstream.urls", UPSTREAM::url);
    registry.add("gateway.auth.admin-api-key", () -> ADMIN_KEY);
    registry.add("gateway.upstream.token", () -> "internal-token");
    registry.add("gateway.upstream.health-interval", () -> "1s");
    // Two models, so that a key can be allowed one and refused the other.
    registry.add("gateway.models.profiles[0].name", () -> "demo-model");
    registry.add("gateway.models.profiles[0].upstream-model", () -> "demo-model");
    registry.add("gateway.models.profiles[0].system-prompt", () -> "你是一个乐于助人的人工智能助手。");
    registry.add("gateway.models.profiles[1].name", () -> "second-model");
    registry.add("gateway.models.profiles[1].upstream-model", () -> "second-model");
    // A model that calls no tools and writes no constrained JSON: such requests are refused.
    registry.add("gateway.models.profiles[1].tools", () -> "false");
    registry.add("gateway.models.profiles[1].structured-outputs", () -> "false");
    registry.add("gateway.stream.resume-grace", () -> "3s");
    registry.add("gateway.fallback.reply", () -> "");
    registry.add("spring.datasource.url", () -> "jdbc:h2:mem:gateway-it;DB_CLOSE_DELAY=-1");
  }

  @Autowired private Breakers breakers;
  @Autowired private Switches switches;
  @Autowired private JdbcTemplate jdbc;

  /** Every test starts with a fresh fake, closed breakers and every switch off. */
  @BeforeEach
  void resetUpstream() {
    UPSTREAM.reset();
    breakers.all().forEach(CircuitBreaker::reset);
    jdbc.update("DELETE FROM switches");
    switches.refresh();
  }

  protected String url(String path) {
    return "http://127.0.0.1:" + port + path;
  }

  protected Request.Builder request(String path) {
    return new Request.Builder().url(url(path)).header("Authorization", "Bearer " + ADMIN_KEY);
  }

  protected Response post(String path, String json) throws IOException {
    return SseClient.HTTP
        .newCall(request(path).post(RequestBody.create(json, JSON)).build())
        .execute();
  }

  protected Response get(String path) throws IOException {
    return SseClient.HTTP.newCall(request(path).get().build()).execute();
  }

  protected SseClient openStream(Request request) throws IOException {
    return new SseClient(SseClient.HTTP.newCall(request).execute());
  }

  protected SseClient postStream(String path, String json) throws IOException {
    return openStream(request(path).post(RequestBody.create(json, JSON)).build());
  }

  /** A chat request to the demo model, not streamed. */
  protected static final String CHAT =
      "{\"model\":\"demo-model\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";

  /** The same, streamed. */
  protected static final String CHAT_STREAM =
      "{\"model\":\"demo-model\",\"stream\":true,"
          + "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";

  /** An API key as created through the admin API: its id and the secret shown once. */
  protected record Key(String id, String secret) {}

  /** Creates a key through the admin API, e.g. {@code {"name":"a","limits":{...}}}. */
  protected Key createKey(String json) throws IOException {
    try (Response response = post("/admin/keys", json)) {
      String body = response.body().string();
      if (response.code() != 201) {
        throw new AssertionError("creating a key answered " + response.code() + ": " + body);
      }
      JsonNode created = Json.parse(body);
      return new Key(created.get("id").asText(), created.get("key").asText());
    }
  }

  protected Request.Builder requestAs(String secret, String path) {
    return new Request.Builder().url(url(path)).header("Authorization", "Bearer " + secret);
  }

  protected Response postAs(String secret, String path, String json) throws IOException {
    return SseClient.HTTP
        .newCall(requestAs(secret, path).post(RequestBody.create(json, JSON)).build())
        .execute();
  }

  protected Response getAs(String secret, String path) throws IOException {
    return SseClient.HTTP.newCall(requestAs(secret, path).get().build()).execute();
  }

  protected Response patch(String path, String json) throws IOException {
    return SseClient.HTTP
        .newCall(request(path).patch(RequestBody.create(json, JSON)).build())
        .execute();
  }

  protected Response put(String path, String json) throws IOException {
    return SseClient.HTTP
        .newCall(request(path).put(RequestBody.create(json, JSON)).build())
        .execute();
  }

  protected Response delete(String path) throws IOException {
    return SseClient.HTTP.newCall(request(path).delete().build()).execute();
  }

  protected SseClient postStreamAs(String secret, String json) throws IOException {
    return openStream(
        requestAs(secret, "/v1/chat/completions").post(RequestBody.create(json, JSON)).build());
  }

  /** Trades a key for a browser session; the answer carries the Set-Cookie header. */
  protected Response login(String secret, Request.Builder request) throws IOException {
    return SseClient.HTTP
        .newCall(
            request
                .url(url("/api/session"))
                .post(RequestBody.create("{\"apiKey\":" + Json.quote(secret) + "}", JSON))
                .build())
        .execute();
  }

  /** The session cookie ({@code gw_session=...}) of a successful login with {@code secret}. */
  protected String sessionCookie(String secret) throws IOException {
    try (Response login = login(secret, new Request.Builder())) {
      if (login.code() != 204) {
        throw new AssertionError("login answered " + login.code());
      }
      String setCookie = login.header("Set-Cookie");
      return setCookie.substring(0, setCookie.indexOf(';'));
    }
  }

  protected static JsonNode body(Response response) throws IOException {
    try (response) {
      return Json.parse(response.body().string());
    }
  }
}
