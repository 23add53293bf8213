package io.selfhosted.gateway.auth;

import io.selfhosted.gateway.system.ApiException;
import java.time.Duration;
import java.util.Optional;
import java.util.function.Supplier;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.dao.DataAccessException;
import org.springframework.http.HttpStatus;
import org.springframework.session.FindByIndexNameSessionRepository;
import org.springframework.session.Session;
import org.springframework.stereotype.Component;

/**
 * Browser sessions opened with an API key, each bound to the key that opened it, so that a session
 * dies with its key. They live in a Spring Session repository (see {@link SessionConfig}): Redis
 * when replicas share state, else this process. A session is written once, when it opens, and never
 * touched again, so its expiry is absolute (the session TTL after sign-in) rather than sliding, and
 * a request costs one read.
 */
@Component
public class SessionStore {

  public static final String COOKIE = "gw_session";

  /** The key id, stored under the name Spring Session indexes, so a key's sessions can be found. */
  static final String KEY_ID = FindByIndexNameSessionRepository.PRINCIPAL_NAME_INDEX_NAME;

  /** What our session ids look like; anything else is not worth a round trip to Redis. */
  private static final Pattern TOKEN = Pattern.compile("[A-Za-z0-9_-]{1,64}");

  private static final Logger log = LoggerFactory.getLogger(SessionStore.class);

  private final Sessions<?> sessions;
  private final Duration ttl;

  public SessionStore(
      FindByIndexNameSessionRepository<? extends Session> repository, AuthProperties properties) {
    this.sessions = new Sessions<>(repository);
    this.ttl = properties.sessionTtl();
  }

  /** One repository with its session type bound, so that what it creates can be saved. */
  private record Sessions<S extends Session>(FindByIndexNameSessionRepository<S> repository) {

    String open(String keyId) {
      S session = repository.createSession();
      session.setAttribute(KEY_ID, keyId);
      repository.save(session);
      return session.getId();
    }
  }

  Duration ttl() {
    return ttl;
  }

  /** Opens a session for the key; its id, the cookie's value. */
  public String open(String keyId) {
    return available(() -> sessions.open(keyId));
  }

  /** The key id behind a live session token. */
  public Optional<String> keyId(String token) {
    if (!wellFormed(token)) {
      return Optional.empty();
    }
    Session session = available(() -> sessions.repository().findById(token));
    return session == null ? Optional.empty() : Optional.ofNullable(session.getAttribute(KEY_ID));
  }

  /** Ends one session, on every replica at once. */
  public void close(String token) {
    if (wellFormed(token)) {
      available(
          () -> {
            sessions.repository().deleteById(token);
            return null;
          });
    }
  }

  /**
   * Ends every session of a key, on every replica at once. A failure is only logged: the key is
   * revoked all the same, and each request checks its session's key, so the sessions still end.
   */
  public void closeAll(String keyId) {
    try {
      var repository = sessions.repository();
      repository.findByPrincipalName(keyId).keySet().forEach(repository::deleteById);
    } catch (DataAccessException e) {
      log.warn(
          "could not end the browser sessions of key {} at once ({}); they end at their next"
              + " request",
          keyId,
          e.getMessage());
    }
  }

  private static boolean wellFormed(String token) {
    return token != null && TOKEN.matcher(token).matches();
  }

  /** Runs a repository call; an unreachable Redis is a 503 for the caller, not a 500. */
  private static <T> T available(Supplier<T> call) {
    try {
      return call.get();
    } catch (DataAccessException e) {
      log.error("browser sessions are unavailable: {}", e.getMessage());
      throw new ApiException(
          HttpStatus.SERVICE_UNAVAILABLE,
          "overloaded_error",
          "sessions_unavailable",
          null,
          "browser sessions are unavailable; retry shortly",
          5L);
    }
  }
}
