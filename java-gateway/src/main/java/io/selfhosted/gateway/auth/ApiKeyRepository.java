package io.selfhosted.gateway.auth;

import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Optional;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.stereotype.Repository;

/** API keys on H2 or PostgreSQL; looked up by the SHA-256 of the presented key. */
@Repository
public class ApiKeyRepository {

  private static final String COLUMNS =
      "SELECT id, name, role, key_prefix, models, requests_per_minute, tokens_per_minute,"
          + " concurrent_streams, tokens_per_day, tokens_per_month, weight, expires_at, created_at,"
          + " last_used_at, revoked_at FROM api_keys";

  private final JdbcClient jdbc;

  public ApiKeyRepository(JdbcClient jdbc) {
    this.jdbc = jdbc;
  }

  /** The editable columns, in the order of {@link #editable}'s values. */
  private static final List<String> EDITABLE =
      List.of(
          "name",
          "models",
          "requests_per_minute",
          "tokens_per_minute",
          "concurrent_streams",
          "tokens_per_day",
          "tokens_per_month",
          "weight",
          "expires_at");

  private static List<Object> editable(ApiKey key) {
    return new ArrayList<>(
        Arrays.asList(
            key.name(),
            models(key.models()),
            key.limits().requestsPerMinute(),
            key.limits().tokensPerMinute(),
            key.limits().concurrentStreams(),
            key.limits().tokensPerDay(),
            key.limits().tokensPerMonth(),
            key.limits().weight(),
            time(key.expiresAt())));
  }

  public void insert(ApiKey key, String hash) {
    List<Object> params = editable(key);
    params.addAll(
        Arrays.asList(key.id(), key.role().wireName(), key.prefix(), hash, time(key.createdAt())));
    jdbc.sql(
            "INSERT INTO api_keys ("
                + String.join(", ", EDITABLE)
                + ", id, role, key_prefix, key_hash, created_at) VALUES ("
                + String.join(", ", Collections.nCopies(params.size(), "?"))
                + ")")
        .params(params)
        .update();
  }

  /** Writes the editable fields: name, models, limits, expiry. */
  public void update(ApiKey key) {
    List<Object> params = editable(key);
    params.add(key.id());
    jdbc.sql("UPDATE api_keys SET " + String.join(" = ?, ", EDITABLE) + " = ? WHERE id = ?")
        .params(params)
        .update();
  }

  /**
   * Points the bootstrap admin at the current ADMIN_API_KEY and makes it usable again. The prefix
   * is written each time too, so a row stored under an older, more revealing prefix rule follows
   * the current one.
   */
  public void upsertBootstrap(ApiKey key, String hash) {
    int updated =
        jdbc.sql(
                "UPDATE api_keys SET key_hash = ?, key_prefix = ?, role = ?, revoked_at = NULL,"
                    + " expires_at = NULL WHERE id = ?")
            .params(hash, key.prefix(), key.role().wireName(), key.id())
            .update();
    if (updated == 0) {
      insert(key, hash);
    }
  }

  public void revoke(String id, Instant at) {
    jdbc.sql("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
        .params(time(at), id)
        .update();
  }

  public void touch(String id, Instant at) {
    jdbc.sql("UPDATE api_keys SET last_used_at = ? WHERE id = ?").params(time(at), id).update();
  }

  public Optional<ApiKey> findByHash(String hash) {
    return jdbc.sql(COLUMNS + " WHERE key_hash = ?")
        .param(hash)
        .query(ApiKeyRepository::row)
        .optional();
  }

  public Optional<ApiKey> findById(String id) {
    return jdbc.sql(COLUMNS + " WHERE id = ?").param(id).query(ApiKeyRepository::row).optional();
  }

  public List<ApiKey> list() {
    return jdbc.sql(COLUMNS + " ORDER BY created_at, id").query(ApiKeyRepository::row).list();
  }

  /**
   * The models column: NULL for every model, as before this distinction existed, and '' for none
   * (never written before, so every existing row keeps its meaning; H2 and PostgreSQL both tell ''
   * from NULL).
   */
  private static String models(AllowedModels models) {
    return models.all() ? null : String.join(",", models.names());
  }

  private static AllowedModels models(String column) {
    if (column == null) {
      return AllowedModels.ALL;
    }
    return AllowedModels.only(
        Arrays.stream(column.split(",")).filter(name -> !name.isBlank()).toList());
  }

  private static OffsetDateTime time(Instant instant) {
    return instant == null ? null : OffsetDateTime.ofInstant(instant, ZoneOffset.UTC);
  }

  private static Instant instant(ResultSet rs, String column) throws SQLException {
    OffsetDateTime value = rs.getObject(column, OffsetDateTime.class);
    return value == null ? null : value.toInstant();
  }

  private static Integer integer(ResultSet rs, String column) throws SQLException {
    int value = rs.getInt(column);
    return rs.wasNull() ? null : value;
  }

  private static Long longOrNull(ResultSet rs, String column) throws SQLException {
    long value = rs.getLong(column);
    return rs.wasNull() ? null : value;
  }

  private static Double doubleOrNull(ResultSet rs, String column) throws SQLException {
    double value = rs.getDouble(column);
    return rs.wasNull() ? null : value;
  }

  private static ApiKey row(ResultSet rs, int n) throws SQLException {
    return new ApiKey(
        rs.getString("id"),
        rs.getString("name"),
        Caller.Role.valueOf(rs.getString("role").toUpperCase()),
        rs.getString("key_prefix"),
        models(rs.getString("models")),
        new KeyLimits(
            integer(rs, "requests_per_minute"),
            integer(rs, "tokens_per_minute"),
            integer(rs, "concurrent_streams"),
            longOrNull(rs, "tokens_per_day"),
            longOrNull(rs, "tokens_per_month"),
            doubleOrNull(rs, "weight")),
        instant(rs, "expires_at"),
        instant(rs, "created_at"),
        instant(rs, "last_used_at"),
        instant(rs, "revoked_at"));
  }
}
