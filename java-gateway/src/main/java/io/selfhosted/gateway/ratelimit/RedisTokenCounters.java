package io.selfhosted.gateway.ratelimit;

import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisCommandExecutionException;
import io.lettuce.core.ScriptOutputType;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.api.sync.RedisCommands;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Virtual token counters in Redis, shared by every gateway replica, so that each orders its queue
 * by what every key was served through all of them. Per model: a sorted set of counters (key id
 * scored by its counter), a hash of waiting requests per key across gateways (the backlog), and the
 * counter of the last key that stopped waiting. Joining and leaving the backlog are Lua scripts, so
 * that "first waiting request, lift to the least backlogged counter" is one atomic step however
 * many gateways do it at once. Charges are plain ZINCRBY.
 *
 * <p>A gateway that dies with requests waiting leaves them in the backlog hash until it has seen no
 * join or leave for {@link #BACKLOG_TTL}; meanwhile those keys only take part in the lift.
 */
final class RedisTokenCounters implements TokenCounters, AutoCloseable {

  private static final Logger log = LoggerFactory.getLogger(RedisTokenCounters.class);
  static final Duration BACKLOG_TTL = Duration.ofMinutes(1);
  static final Duration COUNTER_TTL = Duration.ofDays(1);

  /** KEYS: backlog, counters, last-left; ARGV: key id, backlog ttl ms, counter ttl ms. */
  private static final String JOIN =
      """
      local n = redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
      redis.call('PEXPIRE', KEYS[1], ARGV[2])
      if n == 1 then
        local floor = nil
        for _, k in ipairs(redis.call('HKEYS', KEYS[1])) do
          if k ~= ARGV[1] then
            local c = tonumber(redis.call('ZSCORE', KEYS[2], k) or '0')
            if floor == nil or c < floor then floor = c end
          end
        end
        if floor == nil then floor = tonumber(redis.call('GET', KEYS[3]) or '0') end
        local mine = tonumber(redis.call('ZSCORE', KEYS[2], ARGV[1]) or '0')
        if mine < floor then redis.call('ZADD', KEYS[2], floor, ARGV[1]) end
        redis.call('PEXPIRE', KEYS[2], ARGV[3])
      end
      return n
      """;

  /** KEYS: backlog, counters, last-left; ARGV: key id, backlog ttl ms, counter ttl ms. */
  private static final String LEAVE =
      """
      local n = redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
      if n <= 0 then
        redis.call('HDEL', KEYS[1], ARGV[1])
        if redis.call('HLEN', KEYS[1]) == 0 then
          redis.call('SET', KEYS[3], redis.call('ZSCORE', KEYS[2], ARGV[1]) or '0', 'PX', ARGV[3])
        end
      else
        redis.call('PEXPIRE', KEYS[1], ARGV[2])
      end
      return n
      """;

  private static final Map<String, String> SHAS = new ConcurrentHashMap<>();

  private final StatefulRedisConnection<String, String> connection;
  private final RedisCommands<String, String> redis;
  private volatile long lastWarning;

  RedisTokenCounters(RedisClient client) {
    this.connection = client.connect();
    this.redis = connection.sync();
  }

  // One hash tag per model: a model's keys live in one Redis Cluster slot, as scripts need.
  private static String backlog(String model) {
    return "gateway:vtc:{" + model + "}:backlog";
  }

  private static String counters(String model) {
    return "gateway:vtc:{" + model + "}:counters";
  }

  private static String lastLeft(String model) {
    return "gateway:vtc:{" + model + "}:last-left";
  }

  private void script(String script, String model, String keyId) {
    String[] keys = {backlog(model), counters(model), lastLeft(model)};
    String[] args = {
      keyId, Long.toString(BACKLOG_TTL.toMillis()), Long.toString(COUNTER_TTL.toMillis())
    };
    try {
      String sha = SHAS.computeIfAbsent(script, redis::digest);
      try {
        redis.evalsha(sha, ScriptOutputType.INTEGER, keys, args);
      } catch (RedisCommandExecutionException e) {
        if (e.getMessage() == null || !e.getMessage().startsWith("NOSCRIPT")) {
          throw e;
        }
        redis.eval(script, ScriptOutputType.INTEGER, keys, args);
      }
    } catch (RuntimeException e) {
      warn(e);
    }
  }

  /** Fairness is best effort while Redis is away: requests go on, a warning every 10 s. */
  private void warn(RuntimeException e) {
    long now = System.currentTimeMillis();
    if (now - lastWarning > 10_000) {
      lastWarning = now;
      log.warn("fair admission: shared counters unavailable: {}", e.toString());
    }
  }

  @Override
  public void join(String model, String keyId) {
    script(JOIN, model, keyId);
  }

  @Override
  public void leave(String model, String keyId) {
    script(LEAVE, model, keyId);
  }

  @Override
  public void charge(String model, String keyId, double amount) {
    try {
      redis.zincrby(counters(model), amount, keyId);
    } catch (RuntimeException e) {
      warn(e);
    }
  }

  @Override
  public Map<String, Double> counters(String model, Collection<String> keyIds) {
    List<String> keys = new ArrayList<>(keyIds);
    Map<String, Double> values = new HashMap<>();
    if (keys.isEmpty()) {
      return values;
    }
    // Throws while Redis is away: the queue then admits in arrival order.
    List<Double> scores = redis.zmscore(counters(model), keys.toArray(String[]::new));
    for (int i = 0; i < keys.size(); i++) {
      Double score = scores.get(i);
      values.put(keys.get(i), score == null ? 0.0 : score);
    }
    return values;
  }

  @Override
  public Map<String, Long> waiting(String model) {
    Map<String, Long> waiting = new HashMap<>();
    redis.hgetall(backlog(model)).forEach((k, v) -> waiting.put(k, Long.parseLong(v)));
    return waiting;
  }

  @Override
  public String kind() {
    return "redis";
  }

  @Override
  public void close() {
    connection.close(); // the client is shared: its owner shuts it down
  }
}
