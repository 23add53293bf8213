package io.selfhosted.gateway.auth;

import static org.assertj.core.api.Assertions.assertThat;

import io.selfhosted.gateway.support.GatewayIntegrationTest;
import io.selfhosted.gateway.support.Json;
import io.selfhosted.gateway.support.SseClient;
import okhttp3.MediaType;
import okhttp3.Request;
import okhttp3.RequestBody;
import okhttp3.Response;
import org.junit.jupiter.api.Test;

/**
 * Browser sessions of a gateway without Redis (the embedded default): they end with their key and
 * when the browser signs in again, and the gateway never opens a servlet session beside them.
 */
class BrowserSessionIntegrationTests extends GatewayIntegrationTest {

  private static final String ENDED =
      "the session has ended (signed out, expired, or its key was revoked)";
  private static final MediaType JSON = MediaType.get("application/json");

  /** The status of listing conversations with {@code cookie}, and the 401's message if any. */
  private String conversationsWith(String cookie) throws Exception {
    try (Response response =
        SseClient.HTTP
            .newCall(
                new Request.Builder()
                    .url(url("/api/conversations"))
                    .header("Cookie", cookie)
                    .get()
                    .build())
            .execute()) {
      assertThat(response.headers("Set-Cookie")).as("no servlet session").isEmpty();
      if (response.code() == 401) {
        return Json.parse(response.body().string()).get("error").get("message").asText();
      }
      return Integer.toString(response.code());
    }
  }

  @Test
  void revokingAKeyEndsItsSessionsAtOnce() throws Exception {
    Key key = createKey("{\"name\":\"revoked-browser\"}");
    Key other = createKey("{\"name\":\"other-browser\"}");
    String cookie = sessionCookie(key.secret());
    String bystander = sessionCookie(other.secret());
    assertThat(conversationsWith(cookie)).isEqualTo("200");

    delete("/admin/keys/" + key.id()).close();

    assertThat(conversationsWith(cookie)).isEqualTo(ENDED);
    assertThat(conversationsWith(bystander)).isEqualTo("200");
  }

  @Test
  void signingInAgainEndsTheSessionTheCookieHeldBefore() throws Exception {
    Key key = createKey("{\"name\":\"returning-browser\"}");
    String before = sessionCookie(key.secret());
    String after;
    try (Response login =
        SseClient.HTTP
            .newCall(
                new Request.Builder()
                    .url(url("/api/session"))
                    .header("Cookie", before)
                    .post(RequestBody.create("{\"apiKey\":" + Json.quote(key.secret()) + "}", JSON))
                    .build())
            .execute()) {
      assertThat(login.code()).isEqualTo(204);
      assertThat(login.headers("Set-Cookie")).hasSize(1);
      String setCookie = login.header("Set-Cookie");
      after = setCookie.substring(0, setCookie.indexOf(';'));
    }

    assertThat(after).isNotEqualTo(before);
    assertThat(conversationsWith(before)).isEqualTo(ENDED);
    assertThat(conversationsWith(after)).isEqualTo("200");
  }

  @Test
  void aSignInNeedsTheKeyAsAString() throws Exception {
    for (String body : new String[] {"{}", "{\"apiKey\":null}", "{\"apiKey\":5}"}) {
      try (Response refused =
          SseClient.HTTP
              .newCall(
                  new Request.Builder()
                      .url(url("/api/session"))
                      .post(RequestBody.create(body, JSON))
                      .build())
              .execute()) {
        assertThat(refused.code()).as(body).isEqualTo(400);
        assertThat(refused.headers("Set-Cookie")).as(body).isEmpty();
        var error = Json.parse(refused.body().string()).get("error");
        assertThat(error.get("param").asText()).as(body).isEqualTo("apiKey");
        assertThat(error.get("message").asText()).as(body).isEqualTo("apiKey must be a string");
      }
    }
    // Other fields are ignored, as they always were.
    try (Response login =
        SseClient.HTTP
            .newCall(
                new Request.Builder()
                    .url(url("/api/session"))
                    .post(
                        RequestBody.create(
                            "{\"apiKey\":" + Json.quote(ADMIN_KEY) + ",\"remember\":true}", JSON))
                    .build())
            .execute()) {
      assertThat(login.code()).isEqualTo(204);
    }
  }
}
