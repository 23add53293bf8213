package io.selfhosted.gateway.auth;

import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Collectors;
import org.springframework.scheduling.annotation.Scheduled;
import org.springframework.session.FindByIndexNameSessionRepository;
import org.springframework.session.MapSession;
import org.springframework.session.MapSessionRepository;
import org.springframework.session.Session;
import org.springframework.session.SessionIdGenerator;

/**
 * Browser sessions in this process (no GATEWAY_REDIS_URL): Spring Session's map repository, plus
 * the lookup by key that revoking a key needs, and a sweep of the sessions nobody came back for.
 */
final class LocalSessionRepository implements FindByIndexNameSessionRepository<MapSession> {

  private final Map<String, Session> sessions = new ConcurrentHashMap<>();
  private final MapSessionRepository delegate = new MapSessionRepository(sessions);

  LocalSessionRepository(Duration ttl, SessionIdGenerator ids) {
    delegate.setDefaultMaxInactiveInterval(ttl);
    delegate.setSessionIdGenerator(ids);
  }

  @Override
  public MapSession createSession() {
    return delegate.createSession();
  }

  @Override
  public void save(MapSession session) {
    delegate.save(session);
  }

  @Override
  public MapSession findById(String id) {
    return delegate.findById(id);
  }

  @Override
  public void deleteById(String id) {
    delegate.deleteById(id);
  }

  @Override
  public Map<String, MapSession> findByIndexNameAndIndexValue(String indexName, String indexValue) {
    if (!PRINCIPAL_NAME_INDEX_NAME.equals(indexName)) {
      return Map.of();
    }
    return sessions.values().stream()
        .filter(session -> indexValue.equals(session.getAttribute(PRINCIPAL_NAME_INDEX_NAME)))
        .collect(Collectors.toMap(Session::getId, MapSession::new));
  }

  @Scheduled(fixedDelay = 600_000)
  void evictExpired() {
    sessions.values().removeIf(Session::isExpired);
  }
}
