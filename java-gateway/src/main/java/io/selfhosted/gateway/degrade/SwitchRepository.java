package io.selfhosted.gateway.degrade;

import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.List;
import org.springframework.dao.DuplicateKeyException;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.lang.Nullable;
import org.springframework.stereotype.Repository;

/** The switches table, on H2 or PostgreSQL. */
@Repository
class SwitchRepository {

  private static final String COLUMNS =
      "kind, model, enabled, message, int_value, target, reason, expires_at, updated_by,"
          + " updated_at";

  /** The columns in the order a save binds them: the update's SET, then its WHERE. */
  private static final String WRITE_COLUMNS =
      "enabled, message, int_value, target, reason, expires_at, updated_by, updated_at, kind,"
          + " model";

  private final JdbcClient jdbc;

  SwitchRepository(JdbcClient jdbc) {
    this.jdbc = jdbc;
  }

  List<Switch> findAll() {
    return jdbc.sql("SELECT " + COLUMNS + " FROM switches ORDER BY kind, model")
        .query(SwitchRepository::row)
        .list();
  }

  /** Writes the switch, whether or not it existed (portable upsert: update, else insert). */
  void save(Switch value) {
    // The values in the order of WRITE_COLUMNS, for the update and the insert alike.
    Object[] values = {
      value.enabled(),
      value.message(),
      value.value(),
      value.target(),
      value.reason(),
      time(value.expiresAt()),
      value.updatedBy(),
      time(value.updatedAt()),
      value.kind().wireName(),
      modelColumn(value.model())
    };
    for (int attempt = 0; ; attempt++) {
      int updated =
          jdbc.sql(
                  "UPDATE switches SET enabled = ?, message = ?, int_value = ?, target = ?,"
                      + " reason = ?, expires_at = ?, updated_by = ?, updated_at = ?"
                      + " WHERE kind = ? AND model = ?")
              .params(values)
              .update();
      if (updated > 0) {
        return;
      }
      try {
        jdbc.sql(
                "INSERT INTO switches ("
                    + WRITE_COLUMNS
                    + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
            .params(values)
            .update();
        return;
      } catch (DuplicateKeyException raced) {
        if (attempt > 0) {
          throw raced; // another replica inserted it first: update it on the next round
        }
      }
    }
  }

  /**
   * Turns off a switch whose expiry has passed; true for the one replica whose update did it (so
   * exactly one audits it).
   */
  boolean expire(Switch value, Instant now) {
    return jdbc.sql(
                "UPDATE switches SET enabled = FALSE, updated_by = ?, updated_at = ?"
                    + " WHERE kind = ? AND model = ? AND enabled = TRUE AND expires_at <= ?")
            .params(
                "expiry", time(now), value.kind().wireName(), modelColumn(value.model()), time(now))
            .update()
        > 0;
  }

  private static String modelColumn(@Nullable String model) {
    return model == null ? "" : model;
  }

  private static @Nullable OffsetDateTime time(@Nullable Instant instant) {
    return instant == null ? null : OffsetDateTime.ofInstant(instant, ZoneOffset.UTC);
  }

  private static @Nullable Instant instant(ResultSet rs, String column) throws SQLException {
    OffsetDateTime value = rs.getObject(column, OffsetDateTime.class);
    return value == null ? null : value.toInstant();
  }

  private static Switch row(ResultSet rs, int n) throws SQLException {
    String model = rs.getString("model");
    int cap = rs.getInt("int_value");
    Integer value = rs.wasNull() ? null : cap;
    return new Switch(
        SwitchKind.fromWire(rs.getString("kind")).orElseThrow(),
        model == null || model.isEmpty() ? null : model,
        rs.getBoolean("enabled"),
        rs.getString("message"),
        value,
        rs.getString("target"),
        rs.getString("reason"),
        instant(rs, "expires_at"),
        rs.getString("updated_by"),
        instant(rs, "updated_at"));
  }
}
