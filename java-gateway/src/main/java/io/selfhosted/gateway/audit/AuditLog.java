package io.selfhosted.gateway.audit;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.selfhosted.gateway.auth.Caller;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.slf4j.MDC;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.lang.Nullable;
import org.springframework.stereotype.Repository;

/** Every admin action: who, what, when, and the state before and after. */
@Repository
public class AuditLog {

  private static final Logger log = LoggerFactory.getLogger(AuditLog.class);

  private final JdbcClient jdbc;
  private final ObjectMapper mapper;

  public AuditLog(JdbcClient jdbc, ObjectMapper mapper) {
    this.jdbc = jdbc;
    this.mapper = mapper;
  }

  /** One audit entry; {@code before} and {@code after} are JSON documents or null. */
  public record Entry(
      long id,
      Instant at,
      String actorKeyId,
      String actorName,
      String action,
      String target,
      String before,
      String after,
      String requestId) {}

  /** Records an action; {@code before}/{@code after} are serialized as JSON (never secrets). */
  public void record(
      Caller actor, String action, String target, @Nullable Object before, @Nullable Object after) {
    Instant now = Instant.now();
    jdbc.sql(
            "INSERT INTO audit_log (at, actor_key_id, actor_name, action, target, before_state,"
                + " after_state, request_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
        .params(
            OffsetDateTime.ofInstant(now, ZoneOffset.UTC),
            actor.keyId(),
            actor.name(),
            action,
            target,
            json(before),
            json(after),
            MDC.get("requestId"))
        .update();
    log.info("audit: {} {} by key {}", action, target, actor.keyId());
  }

  /** Newest first, optionally filtered. */
  public List<Entry> find(
      @Nullable String action,
      @Nullable String actorKeyId,
      @Nullable Instant from,
      @Nullable Instant to,
      int limit) {
    StringBuilder sql =
        new StringBuilder(
            "SELECT id, at, actor_key_id, actor_name, action, target, before_state, after_state,"
                + " request_id FROM audit_log WHERE 1 = 1");
    List<Object> params = new ArrayList<>();
    if (action != null) {
      sql.append(" AND action = ?");
      params.add(action);
    }
    if (actorKeyId != null) {
      sql.append(" AND actor_key_id = ?");
      params.add(actorKeyId);
    }
    if (from != null) {
      sql.append(" AND at >= ?");
      params.add(OffsetDateTime.ofInstant(from, ZoneOffset.UTC));
    }
    if (to != null) {
      sql.append(" AND at < ?");
      params.add(OffsetDateTime.ofInstant(to, ZoneOffset.UTC));
    }
    sql.append(" ORDER BY id DESC LIMIT ?");
    params.add(limit);
    return jdbc.sql(sql.toString()).params(params).query(AuditLog::row).list();
  }

  private @Nullable String json(@Nullable Object value) {
    if (value == null) {
      return null;
    }
    try {
      return mapper.writeValueAsString(value);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException(e);
    }
  }

  private static Entry row(ResultSet rs, int n) throws SQLException {
    return new Entry(
        rs.getLong("id"),
        rs.getObject("at", OffsetDateTime.class).toInstant(),
        rs.getString("actor_key_id"),
        rs.getString("actor_name"),
        rs.getString("action"),
        rs.getString("target"),
        rs.getString("before_state"),
        rs.getString("after_state"),
        rs.getString("request_id"));
  }
}
