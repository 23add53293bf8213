package io.selfhosted.gateway.stream.redis;

import io.lettuce.core.RedisCommandExecutionException;
import io.lettuce.core.ScriptOutputType;
import io.lettuce.core.api.sync.RedisCommands;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The Lua scripts that change a stream: each runs atomically in Redis, so that an interrupted
 * stream gets exactly one final event whoever races, and an append never lands after the end.
 */
final class StreamScripts {

  private static final Map<String, String> SHAS = new ConcurrentHashMap<>();

  // KEYS: meta, lease. ARGV: owner key, conversation, instance, lease ms, keep ms.
  static final String CREATE =
      """
      redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'conversation', ARGV[2], 'instance', ARGV[3],
        'ended', '0')
      redis.call('PEXPIRE', KEYS[1], ARGV[5])
      redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
      return 1
      """;

  // KEYS: stream, meta. ARGV: max events, id, name, data, delta, wake channel, keep ms.
  static final String APPEND =
      """
      if redis.call('HGET', KEYS[2], 'ended') == '1' then return 0 end
      redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[1], ARGV[2], 'e', ARGV[3], 'd', ARGV[4],
        't', ARGV[5])
      if ARGV[2] == '1-0' then redis.call('PEXPIRE', KEYS[1], ARGV[7]) end
      redis.call('PUBLISH', ARGV[6], ARGV[2])
      return 1
      """;

  // KEYS: stream, meta, lease. ARGV: max events, id, name, data, wake channel, retention ms.
  static final String END =
      """
      if redis.call('HGET', KEYS[2], 'ended') == '1' then return 0 end
      redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[1], ARGV[2], 'e', ARGV[3], 'd', ARGV[4],
        't', '', 'f', '1')
      redis.call('HSET', KEYS[2], 'ended', '1')
      redis.call('DEL', KEYS[3])
      redis.call('PEXPIRE', KEYS[1], ARGV[6])
      redis.call('PEXPIRE', KEYS[2], ARGV[6])
      redis.call('PUBLISH', ARGV[5], ARGV[2])
      return 1
      """;

  // KEYS: stream, meta, lease. ARGV: max events, data, wake channel, retention ms.
  // The next id follows the last event; a live lease or an ended stream means nothing to do.
  static final String INTERRUPT =
      """
      if redis.call('EXISTS', KEYS[2]) == 0 then return -1 end
      if redis.call('HGET', KEYS[2], 'ended') == '1' then return -1 end
      if redis.call('EXISTS', KEYS[3]) == 1 then return -1 end
      local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
      local seq = 0
      if #last > 0 then seq = tonumber(string.match(last[1][1], '^(%d+)')) end
      local id = (seq + 1) .. '-0'
      redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[1], id, 'e', 'error', 'd', ARGV[2], 't', '',
        'f', '1')
      redis.call('HSET', KEYS[2], 'ended', '1', 'interrupted', '1')
      redis.call('PEXPIRE', KEYS[1], ARGV[4])
      redis.call('PEXPIRE', KEYS[2], ARGV[4])
      redis.call('PUBLISH', ARGV[3], id)
      return seq + 1
      """;

  // KEYS: stream, meta, lease. ARGV: instance, lease ms, keep ms.
  // Answers 'ended' when another replica ended the stream, else the pending cancel reason or ''.
  static final String RENEW =
      """
      if redis.call('HGET', KEYS[2], 'ended') == '1' then return 'ended' end
      redis.call('SET', KEYS[3], ARGV[1], 'PX', ARGV[2])
      redis.call('PEXPIRE', KEYS[1], ARGV[3])
      redis.call('PEXPIRE', KEYS[2], ARGV[3])
      local cancel = redis.call('HGET', KEYS[2], 'cancel')
      if cancel then return cancel end
      return ''
      """;

  // KEYS: meta. ARGV: reason, cancel channel, message id.
  static final String REQUEST_CANCEL =
      """
      if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
      if redis.call('HGET', KEYS[1], 'ended') == '1' then return 0 end
      redis.call('HSET', KEYS[1], 'cancel', ARGV[1])
      redis.call('PUBLISH', ARGV[2], ARGV[3] .. '\\n' .. ARGV[1])
      return 1
      """;

  private StreamScripts() {}

  /**
   * Runs a script by its SHA-1 (EVALSHA), so that the script's text does not travel with every call
   * (an append runs once per token); a server that does not know it yet (first call, a restart)
   * gets it once through EVAL, which also caches it there.
   */
  static <T> T run(
      RedisCommands<String, String> redis,
      String script,
      ScriptOutputType type,
      String[] keys,
      String... args) {
    String sha = SHAS.computeIfAbsent(script, redis::digest); // computed here, not in Redis
    try {
      return redis.evalsha(sha, type, keys, args);
    } catch (RedisCommandExecutionException e) {
      if (e.getMessage() == null || !e.getMessage().startsWith("NOSCRIPT")) {
        throw e;
      }
      return redis.eval(script, type, keys, args);
    }
  }
}
