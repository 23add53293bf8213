package io.selfhosted.gateway.auth;

import static org.assertj.core.api.Assertions.assertThat;

import io.selfhosted.gateway.support.TestProperties;
import io.selfhosted.gateway.system.GatewayProperties;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.springframework.mock.web.MockFilterChain;
import org.springframework.mock.web.MockHttpServletRequest;
import org.springframework.mock.web.MockHttpServletResponse;

/** The gateway is never open: no ADMIN_API_KEY means every API call is refused. */
class ApiKeyFilterTests {

  private static GatewayProperties withKey(String key) {
    GatewayProperties base =
        TestProperties.withUpstreams(List.of("http://127.0.0.1:1"), Duration.ofHours(1));
    return new GatewayProperties(
        base.upstreams(),
        base.modelServiceToken(),
        key,
        base.maxBodySize(),
        base.upstream(),
        base.stream(),
        base.cors(),
        base.profiles());
  }

  private static MockHttpServletResponse call(String key, String method, String path, String auth)
      throws Exception {
    ApiKeyFilter filter = new ApiKeyFilter(new ApiKeyVerifier(withKey(key)), new SessionStore());
    MockHttpServletRequest request = new MockHttpServletRequest(method, path);
    if (auth != null) {
      request.addHeader("Authorization", auth);
    }
    MockHttpServletResponse response = new MockHttpServletResponse();
    filter.doFilter(request, response, new MockFilterChain());
    return response;
  }

  @Test
  void refusesEveryApiCallWhenNoKeyIsConfigured() throws Exception {
    for (String auth : new String[] {null, "Bearer ", "Bearer anything"}) {
      MockHttpServletResponse response = call("", "GET", "/api/conversations", auth);
      assertThat(response.getStatus()).isEqualTo(401);
      assertThat(response.getContentAsString()).contains("\"type\":\"authentication_error\"");
    }
  }

  @Test
  void acceptsTheConfiguredKeyOnly() throws Exception {
    assertThat(call("s3cret", "POST", "/v1/chat/completions", "Bearer s3cret").getStatus())
        .isEqualTo(200);
    assertThat(call("s3cret", "POST", "/v1/chat/completions", "bearer s3cret").getStatus())
        .isEqualTo(200);
    assertThat(call("s3cret", "POST", "/v1/chat/completions", "Bearer s3cre").getStatus())
        .isEqualTo(401);
    assertThat(call("s3cret", "POST", "/v1/chat/completions", "Basic s3cret").getStatus())
        .isEqualTo(401);
  }

  @Test
  void leavesPagesHealthAndLoginOpen() throws Exception {
    assertThat(call("", "GET", "/", null).getStatus()).isEqualTo(200);
    assertThat(call("", "GET", "/actuator/health", null).getStatus()).isEqualTo(200);
    assertThat(call("", "POST", "/api/session", null).getStatus()).isEqualTo(200);
  }

  @Test
  void neverEchoesTheKey() throws Exception {
    MockHttpServletResponse response =
        call("s3cret", "GET", "/api/conversations", "Bearer wrong-key");
    assertThat(response.getContentAsString()).doesNotContain("wrong-key").doesNotContain("s3cret");
  }
}
