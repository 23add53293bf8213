package io.selfhosted.gateway.auth;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import io.lettuce.core.RedisClient;
import io.selfhosted.gateway.support.FakeModelService;
import io.selfhosted.gateway.support.GatewayReplicas;
import io.selfhosted.gateway.support.Json;
import io.selfhosted.gateway.support.SseClient;
import java.time.Duration;
import java.util.List;
import java.util.UUID;
import okhttp3.MediaType;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfEnvironmentVariable;
import org.springframework.boot.actuate.health.HealthContributor;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.data.redis.connection.lettuce.LettuceConnectionFactory;

/**
 * Two gateway replicas, one database, one real Redis server: a browser signed in on one gateway is
 * signed in on every gateway, as behind a round robin without sticky sessions, and stays signed in
 * when a gateway restarts; signing out or revoking the key ends the session everywhere at once.
 */
@EnabledIfEnvironmentVariable(
    named = "GATEWAY_TEST_REDIS_URL",
    matches = ".+",
    disabledReason = "needs a Redis server: run through python -m harness.services (make test)")
class SharedSessionsIntegrationTests {

  private static final String ADMIN = "shared-sessions-admin-key";
  private static final String ENDED =
      "the session has ended (signed out, expired, or its key was revoked)";
  private static final MediaType JSON = MediaType.get("application/json");
  private static final FakeModelService UPSTREAM = new FakeModelService();
  private static final String DATABASE = "shared-sessions-" + UUID.randomUUID();
  private static ConfigurableApplicationContext first;
  private static ConfigurableApplicationContext second;

  @BeforeAll
  static void startTwoGateways() {
    first = GatewayReplicas.start(DATABASE, UPSTREAM, ADMIN);
    second = GatewayReplicas.start(DATABASE, UPSTREAM, ADMIN);
  }

  @AfterAll
  static void stop() {
    second.close();
    first.close();
    UPSTREAM.close();
  }

  private record Key(String id, String secret) {}

  private static Key createKey(ConfigurableApplicationContext gateway, String name)
      throws Exception {
    try (Response response =
        SseClient.HTTP
            .newCall(
                new Request.Builder()
                    .url(GatewayReplicas.url(gateway, "/admin/keys"))
                    .header("Authorization", "Bearer " + ADMIN)
                    .post(RequestBody.create("{\"name\":\"" + name + "\"}", JSON))
                    .build())
            .execute()) {
      assertThat(response.code()).isEqualTo(201);
      JsonNode created = Json.parse(response.body().string());
      return new Key(created.get("id").asText(), created.get("key").asText());
    }
  }

  /** Signs in on {@code gateway}; the cookie a browser would send back ({@code gw_session=...}). */
  private static String signIn(ConfigurableApplicationContext gateway, String secret)
      throws Exception {
    try (Response login =
        SseClient.HTTP
            .newCall(
                new Request.Builder()
                    .url(GatewayReplicas.url(gateway, "/api/session"))
                    .post(RequestBody.create("{\"apiKey\":" + Json.quote(secret) + "}", JSON))
                    .build())
            .execute()) {
      assertThat(login.code()).isEqualTo(204);
      List<String> cookies = login.headers("Set-Cookie");
      assertThat(cookies).as("one cookie, ours: no servlet session").hasSize(1);
      String cookie = cookies.get(0);
      assertThat(cookie)
          .startsWith(SessionStore.COOKIE + "=")
          .contains("HttpOnly")
          .contains("SameSite=Strict")
          .contains("Path=/");
      return cookie.substring(0, cookie.indexOf(';'));
    }
  }

  private static Request.Builder withCookie(
      ConfigurableApplicationContext gateway, String path, String cookie) {
    return new Request.Builder().url(GatewayReplicas.url(gateway, path)).header("Cookie", cookie);
  }

  /**
   * Who {@code cookie} signs in as on {@code gateway}: the key id, or why a protected endpoint
   * refuses it.
   */
  private static String whoAmI(ConfigurableApplicationContext gateway, String cookie)
      throws Exception {
    try (Response response =
        SseClient.HTTP
            .newCall(withCookie(gateway, "/api/conversations", cookie).get().build())
            .execute()) {
      if (response.code() == 401) {
        return Json.parse(response.body().string()).get("error").get("message").asText();
      }
      assertThat(response.code()).isEqualTo(200);
    }
    try (Response response =
        SseClient.HTTP
            .newCall(withCookie(gateway, "/api/session", cookie).get().build())
            .execute()) {
      assertThat(response.code()).isEqualTo(200);
      assertThat(response.headers("Set-Cookie")).as("no servlet session").isEmpty();
      return Json.parse(response.body().string()).get("keyId").asText();
    }
  }

  @Test
  void aSessionOpenedOnOneGatewayWorksOnTheOther() throws Exception {
    Key key = createKey(first, "browser");
    String cookie = signIn(first, key.secret());

    assertThat(whoAmI(second, cookie)).isEqualTo(key.id());
    String origin = "http://127.0.0.1:" + second.getEnvironment().getProperty("local.server.port");
    try (Response created =
        SseClient.HTTP
            .newCall(
                withCookie(second, "/api/conversations", cookie)
                    .header("Origin", origin)
                    .post(RequestBody.create("{}", JSON))
                    .build())
            .execute()) {
      assertThat(created.code()).isEqualTo(201);
    }
    try (Response listed =
        SseClient.HTTP
            .newCall(withCookie(first, "/api/conversations", cookie).get().build())
            .execute()) {
      assertThat(listed.code()).isEqualTo(200);
      assertThat(Json.parse(listed.body().string()).get("data")).hasSize(1);
    }
  }

  @Test
  void everyUserOfRedisSharesOneClientAndHealthDoesNotHangOnIt() {
    LettuceConnectionFactory factory = first.getBean(LettuceConnectionFactory.class);
    assertThat(first.getBeansOfType(RedisClient.class).values())
        .singleElement()
        .isSameAs(factory.getRequiredNativeClient());
    // A Redis outage refuses what needs Redis (503s that say so), not the whole gateway.
    assertThat(first.getBeansOfType(HealthContributor.class).keySet())
        .noneMatch(name -> name.toLowerCase().contains("redis"));
  }

  @Test
  void signingOutOnOneGatewayEndsTheSessionOnBoth() throws Exception {
    Key key = createKey(first, "leaving");
    String cookie = signIn(first, key.secret());
    assertThat(whoAmI(second, cookie)).isEqualTo(key.id());

    try (Response out =
        SseClient.HTTP
            .newCall(withCookie(second, "/api/session", cookie).delete().build())
            .execute()) {
      assertThat(out.code()).isEqualTo(204);
      assertThat(out.header("Set-Cookie"))
          .startsWith(SessionStore.COOKIE + "=;")
          .contains("Max-Age=0");
    }

    assertThat(whoAmI(first, cookie)).isEqualTo(ENDED);
    assertThat(whoAmI(second, cookie)).isEqualTo(ENDED);
  }

  @Test
  void revokingAKeyOnOneGatewayEndsItsSessionsOnTheOtherWithinASecond() throws Exception {
    Key key = createKey(first, "revoked");
    Key other = createKey(first, "bystander");
    String laptop = signIn(second, key.secret());
    String phone = signIn(first, key.secret());
    String bystander = signIn(second, other.secret());
    // The second gateway now holds the key in its cache, which alone would trust it for seconds.
    assertThat(whoAmI(second, laptop)).isEqualTo(key.id());
    assertThat(whoAmI(second, phone)).isEqualTo(key.id());

    try (Response revoked =
        SseClient.HTTP
            .newCall(
                new Request.Builder()
                    .url(GatewayReplicas.url(first, "/admin/keys/" + key.id()))
                    .header("Authorization", "Bearer " + ADMIN)
                    .delete()
                    .build())
            .execute()) {
      assertThat(revoked.code()).isEqualTo(200);
    }

    await()
        .atMost(Duration.ofSeconds(1))
        .pollInterval(Duration.ofMillis(50))
        .untilAsserted(
            () -> {
              assertThat(whoAmI(second, laptop)).isEqualTo(ENDED);
              assertThat(whoAmI(second, phone)).isEqualTo(ENDED);
            });
    assertThat(whoAmI(first, laptop)).isEqualTo(ENDED);
    assertThat(whoAmI(second, bystander)).as("another key's session").isEqualTo(other.id());
  }

  @Test
  void aSessionOutlivesARestartButNotTheAdminKeyItWasOpenedWith() throws Exception {
    String database = "restarted-" + UUID.randomUUID();
    ConfigurableApplicationContext before = GatewayReplicas.start(database, UPSTREAM, ADMIN);
    Key key = createKey(before, "survivor");
    String cookie = signIn(before, key.secret());
    String admin = signIn(before, ADMIN);
    before.close();

    // The same gateway started again, now with another ADMIN_API_KEY.
    ConfigurableApplicationContext after =
        GatewayReplicas.start(database, UPSTREAM, "rotated-admin-key");
    try {
      assertThat(whoAmI(after, cookie)).isEqualTo(key.id());
      assertThat(whoAmI(after, admin)).isEqualTo(ENDED);
    } finally {
      after.close();
    }
  }
}
