package io.selfhosted.gateway.auth;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatNoException;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.selfhosted.gateway.system.ApiException;
import jakarta.servlet.http.Cookie;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.springframework.data.redis.RedisConnectionFailureException;
import org.springframework.mock.web.MockFilterChain;
import org.springframework.mock.web.MockHttpServletRequest;
import org.springframework.mock.web.MockHttpServletResponse;
import org.springframework.session.FindByIndexNameSessionRepository;
import org.springframework.session.MapSession;

/** Session tokens, their lookups, and what a browser sees when the session store is down. */
class SessionStoreTests {

  private static final AuthProperties AUTH =
      new AuthProperties(
          "",
          Duration.ofSeconds(5),
          Duration.ofHours(12),
          false,
          AuthProperties.ApiDocs.AUTHENTICATED);

  private static SessionStore local() {
    return new SessionStore(
        new LocalSessionRepository(AUTH.sessionTtl(), new SessionConfig().sessionIdGenerator()),
        AUTH);
  }

  @Test
  void tokensAreLongRandomAndCookieSafe() {
    SessionStore sessions = local();
    Set<String> tokens =
        IntStream.range(0, 1000).mapToObj(i -> sessions.open("key")).collect(Collectors.toSet());
    assertThat(tokens).hasSize(1000).allMatch(token -> token.matches("[A-Za-z0-9_-]{43}"));
  }

  @Test
  void aSessionNamesItsKeyUntilClosedOrItsKeysSessionsAreClosed() {
    SessionStore sessions = local();
    String one = sessions.open("key-a");
    String two = sessions.open("key-a");
    String other = sessions.open("key-b");
    assertThat(sessions.keyId(one)).contains("key-a");

    sessions.close(one);
    assertThat(sessions.keyId(one)).isEmpty();
    assertThat(sessions.keyId(two)).contains("key-a");

    sessions.closeAll("key-a");
    assertThat(sessions.keyId(two)).isEmpty();
    assertThat(sessions.keyId(other)).contains("key-b");
    assertThat(sessions.keyId(null)).isEmpty();
    assertThat(sessions.keyId("not a token; of ours")).isEmpty();
  }

  @Test
  void anUnreachableStoreIsA503ButDoesNotStopARevocation() {
    SessionStore sessions = new SessionStore(new Unreachable(), AUTH);

    assertThatThrownBy(() -> sessions.keyId("abc"))
        .isInstanceOfSatisfying(
            ApiException.class,
            e -> {
              assertThat(e.status().value()).isEqualTo(503);
              assertThat(e.code()).isEqualTo("sessions_unavailable");
              assertThat(e.retryAfterSeconds()).isEqualTo(5L);
            });
    assertThatThrownBy(() -> sessions.open("key")).isInstanceOf(ApiException.class);
    assertThatNoException().isThrownBy(() -> sessions.closeAll("key"));
  }

  @Test
  void aCookieThatCannotBeCheckedLeavesTheRequestAnonymousWithTheReason() throws Exception {
    SessionStore sessions = new SessionStore(new Unreachable(), AUTH);
    ApiKeyAuthenticationFilter filter =
        new ApiKeyAuthenticationFilter(
            new ApiKeyService(null, AUTH, sessions), sessions, List.of(), (q, r, e) -> {});
    MockHttpServletRequest request = new MockHttpServletRequest("GET", "/api/conversations");
    request.setCookies(new Cookie(SessionStore.COOKIE, "abc"));
    MockFilterChain chain = new MockFilterChain();

    filter.doFilter(request, new MockHttpServletResponse(), chain);

    assertThat(chain.getRequest()).as("public pages still load").isNotNull();
    assertThat(request.getAttribute(ApiKeyAuthenticationFilter.UNAVAILABLE))
        .isInstanceOfSatisfying(
            ApiException.class, e -> assertThat(e.status().value()).isEqualTo(503));
  }

  /** A Redis that does not answer. */
  private static final class Unreachable implements FindByIndexNameSessionRepository<MapSession> {

    private static RedisConnectionFailureException down() {
      return new RedisConnectionFailureException("Unable to connect to Redis");
    }

    @Override
    public MapSession createSession() {
      return new MapSession();
    }

    @Override
    public void save(MapSession session) {
      throw down();
    }

    @Override
    public MapSession findById(String id) {
      throw down();
    }

    @Override
    public void deleteById(String id) {
      throw down();
    }

    @Override
    public Map<String, MapSession> findByIndexNameAndIndexValue(
        String indexName, String indexValue) {
      throw down();
    }
  }
}
