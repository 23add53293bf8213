package io.selfhosted.gateway.auth;

import java.security.SecureRandom;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.Base64;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.springframework.scheduling.annotation.Scheduled;
import org.springframework.stereotype.Component;

/** Browser sessions opened with an API key: random opaque tokens held in memory. */
@Component
public class SessionStore {

  public static final String COOKIE = "gw_session";
  static final Duration TTL = Duration.ofHours(12);

  private final SecureRandom random = new SecureRandom();
  private final Map<String, Instant> sessions = new ConcurrentHashMap<>();
  private final Clock clock = Clock.systemUTC();

  public String open() {
    byte[] bytes = new byte[32];
    random.nextBytes(bytes);
    String token = Base64.getUrlEncoder().withoutPadding().encodeToString(bytes);
    sessions.put(token, clock.instant().plus(TTL));
    return token;
  }

  public boolean isValid(String token) {
    if (token == null) {
      return false;
    }
    Instant expiry = sessions.get(token);
    return expiry != null && expiry.isAfter(clock.instant());
  }

  public void close(String token) {
    if (token != null) {
      sessions.remove(token);
    }
  }

  @Scheduled(fixedDelay = 600_000)
  void evictExpired() {
    Instant now = clock.instant();
    sessions.values().removeIf(expiry -> !expiry.isAfter(now));
  }
}
