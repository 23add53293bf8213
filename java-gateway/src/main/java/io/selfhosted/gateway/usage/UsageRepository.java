package io.selfhosted.gateway.usage;

import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Types;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;
import org.springframework.jdbc.core.JdbcTemplate;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.lang.Nullable;
import org.springframework.stereotype.Repository;

/** Usage records on H2 or PostgreSQL: batch inserts, filtered reads and grouped totals. */
@Repository
public class UsageRepository {

  private final JdbcClient jdbc;
  private final JdbcTemplate template;

  public UsageRepository(JdbcClient jdbc, JdbcTemplate template) {
    this.jdbc = jdbc;
    this.template = template;
  }

  /** A filter on usage: any field may be null. */
  public record Filter(
      @Nullable String keyId,
      @Nullable String model,
      @Nullable Instant from,
      @Nullable Instant to) {}

  /** Totals of one group (a key or a model), or of everything when {@code group} is null. */
  public record Totals(
      @Nullable String group,
      long requests,
      long promptTokens,
      long completionTokens,
      long totalTokens,
      long completed,
      long cancelled,
      long failed,
      long degraded) {}

  public void insertAll(List<UsageRecord> records) {
    template.batchUpdate(
        "INSERT INTO usage_records (request_id, key_id, model, surface, prompt_tokens,"
            + " completion_tokens, ttft_ms, duration_ms, status, finish_reason, replica,"
            + " degraded, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        records,
        records.size(),
        (ps, r) -> {
          ps.setString(1, r.requestId());
          ps.setString(2, r.keyId());
          ps.setString(3, r.model());
          ps.setString(4, r.surface());
          ps.setInt(5, r.promptTokens());
          ps.setInt(6, r.completionTokens());
          if (r.ttftMs() == null) {
            ps.setNull(7, Types.BIGINT);
          } else {
            ps.setLong(7, r.ttftMs());
          }
          ps.setLong(8, r.durationMs());
          ps.setString(9, r.status());
          ps.setString(10, r.finishReason());
          ps.setString(11, r.replica());
          ps.setString(12, r.degraded());
          ps.setObject(13, time(r.createdAt()));
        });
  }

  /** The newest records matching the filter. */
  public List<UsageRecord> find(Filter filter, int limit) {
    List<Object> params = new ArrayList<>();
    String where = where(filter, params);
    params.add(limit);
    return jdbc.sql(
            "SELECT request_id, key_id, model, surface, prompt_tokens, completion_tokens, ttft_ms,"
                + " duration_ms, status, finish_reason, replica, degraded, created_at FROM"
                + " usage_records"
                + where
                + " ORDER BY created_at DESC, id DESC LIMIT ?")
        .params(params)
        .query(UsageRepository::record)
        .list();
  }

  /** Totals grouped by {@code key_id} or {@code model}, or over everything with null. */
  public List<Totals> totals(Filter filter, @Nullable String groupColumn) {
    if (groupColumn != null && !groupColumn.equals("key_id") && !groupColumn.equals("model")) {
      throw new IllegalArgumentException(groupColumn);
    }
    List<Object> params = new ArrayList<>();
    String where = where(filter, params);
    String group = groupColumn == null ? "NULL" : groupColumn;
    String sql =
        "SELECT "
            + group
            + " AS grp, COUNT(*) AS requests, COALESCE(SUM(prompt_tokens), 0) AS prompt,"
            + " COALESCE(SUM(completion_tokens), 0) AS completion,"
            + " COALESCE(SUM(CASE WHEN status = 'completed' THEN 1 ELSE 0 END), 0) AS completed,"
            + " COALESCE(SUM(CASE WHEN status = 'cancelled' THEN 1 ELSE 0 END), 0) AS cancelled,"
            + " COALESCE(SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), 0) AS failed,"
            + " COALESCE(SUM(CASE WHEN degraded IS NULL THEN 0 ELSE 1 END), 0) AS degraded"
            + " FROM usage_records"
            + where
            + (groupColumn == null ? "" : " GROUP BY " + groupColumn + " ORDER BY " + groupColumn);
    return jdbc.sql(sql)
        .params(params)
        .query(
            (rs, n) ->
                new Totals(
                    rs.getString("grp"),
                    rs.getLong("requests"),
                    rs.getLong("prompt"),
                    rs.getLong("completion"),
                    rs.getLong("prompt") + rs.getLong("completion"),
                    rs.getLong("completed"),
                    rs.getLong("cancelled"),
                    rs.getLong("failed"),
                    rs.getLong("degraded")))
        .list();
  }

  /** Tokens a key used since {@code from}, for its quota. */
  public long tokensSince(String keyId, Instant from) {
    return jdbc.sql(
            "SELECT COALESCE(SUM(prompt_tokens + completion_tokens), 0) FROM usage_records"
                + " WHERE key_id = ? AND created_at >= ?")
        .params(keyId, time(from))
        .query(Long.class)
        .single();
  }

  private static String where(Filter filter, List<Object> params) {
    StringBuilder where = new StringBuilder(" WHERE 1 = 1");
    if (filter.keyId() != null) {
      where.append(" AND key_id = ?");
      params.add(filter.keyId());
    }
    if (filter.model() != null) {
      where.append(" AND model = ?");
      params.add(filter.model());
    }
    if (filter.from() != null) {
      where.append(" AND created_at >= ?");
      params.add(time(filter.from()));
    }
    if (filter.to() != null) {
      where.append(" AND created_at < ?");
      params.add(time(filter.to()));
    }
    return where.toString();
  }

  private static OffsetDateTime time(Instant instant) {
    return OffsetDateTime.ofInstant(instant, ZoneOffset.UTC);
  }

  private static UsageRecord record(ResultSet rs, int n) throws SQLException {
    long ttft = rs.getLong("ttft_ms");
    Long ttftMs = rs.wasNull() ? null : ttft;
    return new UsageRecord(
        rs.getString("request_id"),
        rs.getString("key_id"),
        rs.getString("model"),
        rs.getString("surface"),
        rs.getInt("prompt_tokens"),
        rs.getInt("completion_tokens"),
        ttftMs,
        rs.getLong("duration_ms"),
        rs.getString("status"),
        rs.getString("finish_reason"),
        rs.getString("replica"),
        rs.getString("degraded"),
        rs.getObject("created_at", OffsetDateTime.class).toInstant());
  }
}
