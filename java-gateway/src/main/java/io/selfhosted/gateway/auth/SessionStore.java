package io.selfhosted.gateway.auth;

import java.security.SecureRandom;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.Base64;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import org.springframework.scheduling.annotation.Scheduled;
import org.springframework.stereotype.Component;

/**
 * Browser sessions opened with an API key: random opaque tokens held in memory, each bound to the
 * key that opened it, so that a session dies with its key.
 */
@Component
public class SessionStore {

  public static final String COOKIE = "gw_session";

  private final SecureRandom random = new SecureRandom();
  private final Map<String, Session> sessions = new ConcurrentHashMap<>();
  private final Clock clock = Clock.systemUTC();
  private final Duration ttl;

  public SessionStore(AuthProperties properties) {
    this.ttl = properties.sessionTtl();
  }

  private record Session(String keyId, Instant expiresAt) {}

  Duration ttl() {
    return ttl;
  }

  public String open(String keyId) {
    byte[] bytes = new byte[32];
    random.nextBytes(bytes);
    String token = Base64.getUrlEncoder().withoutPadding().encodeToString(bytes);
    sessions.put(token, new Session(keyId, clock.instant().plus(ttl)));
    return token;
  }

  /** The key id behind a live session token. */
  public Optional<String> keyId(String token) {
    if (token == null) {
      return Optional.empty();
    }
    Session session = sessions.get(token);
    if (session == null || !session.expiresAt().isAfter(clock.instant())) {
      return Optional.empty();
    }
    return Optional.of(session.keyId());
  }

  public void close(String token) {
    if (token != null) {
      sessions.remove(token);
    }
  }

  @Scheduled(fixedDelay = 600_000)
  void evictExpired() {
    Instant now = clock.instant();
    sessions.values().removeIf(session -> !session.expiresAt().isAfter(now));
  }
}
