package io.selfhosted.gateway.safety;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.util.Map;
import okhttp3.HttpUrl;
import okhttp3.MediaType;
import okhttp3.OkHttpClient;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.slf4j.MDC;
import org.springframework.beans.factory.DisposableBean;
import org.springframework.lang.Nullable;
import org.springframework.stereotype.Component;

/**
 * The optional external moderation service ({@code gateway.content.moderation.*}), spoken to in the
 * OpenAI moderation shape: {@code POST {"input": text}}, answered with {@code
 * {"results":[{"flagged":true,"categories":{"violence":true}}]}}. Inert when no URL is set.
 */
@Component
public class ModerationClient implements DisposableBean {

  private static final Logger log = LoggerFactory.getLogger(ModerationClient.class);
  private static final MediaType JSON = MediaType.get("application/json");

  /** A moderation answer is a few hundred bytes; more than this is not one. */
  private static final long MAX_RESPONSE_BYTES = 1 << 20;

  private final @Nullable OkHttpClient client;
  private final @Nullable HttpUrl url;
  private final String token;
  private final boolean failOpen;
  private final ObjectMapper mapper;

  public ModerationClient(ContentProperties properties, ObjectMapper mapper) {
    ContentProperties.Moderation moderation = properties.moderation();
    this.mapper = mapper;
    this.token = moderation.token() == null ? "" : moderation.token();
    this.failOpen = moderation.failOpen();
    if (moderation.url() == null || moderation.url().isBlank()) {
      this.url = null;
      this.client = null;
      return;
    }
    this.url = HttpUrl.parse(moderation.url().strip());
    if (url == null) {
      throw new IllegalStateException(
          "gateway.content.moderation.url is not an http(s) URL: " + moderation.url());
    }
    this.client =
        new OkHttpClient.Builder()
            .callTimeout(moderation.timeout())
            .connectTimeout(moderation.timeout())
            .readTimeout(moderation.timeout())
            .writeTimeout(moderation.timeout())
            .retryOnConnectionFailure(false)
            .build();
  }

  /** Whether a moderation service is configured. */
  public boolean enabled() {
    return client != null;
  }

  /**
   * Asks the service about a text, blocking for at most the configured timeout. Returns the verdict
   * (rule {@code moderation}, category the first flagged one) or null when clean, when disabled, or
   * when the service fails and moderation fails open.
   *
   * @throws ModerationUnavailableException when the service fails and moderation fails closed
   */
  public @Nullable Verdict check(String text) {
    if (client == null || url == null) {
      return null;
    }
    Request.Builder request = new Request.Builder().url(url).post(body(text));
    if (!token.isBlank()) {
      request.header("Authorization", "Bearer " + token);
    }
    String requestId = MDC.get("requestId");
    if (requestId != null) {
      request.header("X-Request-Id", requestId);
    }
    try (Response response = client.newCall(request.build()).execute()) {
      if (!response.isSuccessful()) {
        return failed("HTTP " + response.code(), null);
      }
      return verdict(mapper.readTree(response.peekBody(MAX_RESPONSE_BYTES).string()));
    } catch (IOException | IllegalArgumentException e) {
      // IOException covers timeouts and bad JSON; IllegalArgumentException a wrong JSON shape.
      return failed(e.getClass().getSimpleName() + ": " + e.getMessage(), e);
    }
  }

  private RequestBody body(String text) {
    try {
      return RequestBody.create(mapper.writeValueAsBytes(Map.of("input", text)), JSON);
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }

  private static @Nullable Verdict verdict(JsonNode root) {
    JsonNode results = root == null ? null : root.get("results");
    if (results == null || !results.isArray() || results.isEmpty()) {
      throw new IllegalArgumentException("the answer has no results");
    }
    for (JsonNode result : results) {
      JsonNode flagged = result.get("flagged");
      if (flagged == null || !flagged.isBoolean()) {
        throw new IllegalArgumentException("a result has no boolean 'flagged'");
      }
      if (flagged.booleanValue()) {
        return new Verdict("moderation", firstCategory(result.get("categories")));
      }
    }
    return null;
  }

  private static String firstCategory(@Nullable JsonNode categories) {
    if (categories != null && categories.isObject()) {
      for (Map.Entry<String, JsonNode> category : categories.properties()) {
        if (category.getValue().isBoolean() && category.getValue().booleanValue()) {
          return category.getKey();
        }
      }
    }
    return "flagged";
  }

  private @Nullable Verdict failed(String why, @Nullable Throwable cause) {
    if (failOpen) {
      log.warn("moderation unavailable ({}), the text passes unchecked (fail-open)", why);
      return null;
    }
    log.warn("moderation unavailable ({}), the text is refused (fail-closed)", why);
    throw new ModerationUnavailableException("moderation service unavailable: " + why, cause);
  }

  @Override
  public void destroy() {
    if (client != null) {
      client.dispatcher().cancelAll();
      client.connectionPool().evictAll();
    }
  }
}
