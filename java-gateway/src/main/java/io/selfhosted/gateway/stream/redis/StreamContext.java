package io.selfhosted.gateway.stream.redis;

import io.lettuce.core.Limit;
import io.lettuce.core.Range;
import io.lettuce.core.RedisFuture;
import io.lettuce.core.ScriptOutputType;
import io.lettuce.core.StreamMessage;
import io.lettuce.core.api.async.RedisAsyncCommands;
import io.lettuce.core.api.sync.RedisCommands;
import io.lettuce.core.pubsub.StatefulRedisPubSubConnection;
import io.selfhosted.gateway.stream.StreamProperties;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * What the writers, readers and upkeep of the Redis stream store share: the connections, the worker
 * threads, this gateway's name and the settings in Redis's units.
 */
final class StreamContext {

  /** How many events one read fetches. */
  static final int PAGE = 512;

  final RedisCommands<String, String> redis;
  final RedisAsyncCommands<String, String> async;
  final StatefulRedisPubSubConnection<String, String> pubsub;
  final ExecutorService work;
  final String instance;
  final int maxEvents;
  final long leaseMillis;
  final long retentionMillis;
  final long graceNanos;
  final long tickMillis;
  final long presenceMillis;

  StreamContext(
      RedisCommands<String, String> redis,
      RedisAsyncCommands<String, String> async,
      StatefulRedisPubSubConnection<String, String> pubsub,
      ExecutorService work,
      String instance,
      StreamProperties properties) {
    this.redis = redis;
    this.async = async;
    this.pubsub = pubsub;
    this.work = work;
    this.instance = instance;
    this.maxEvents = properties.maxEvents();
    this.leaseMillis = properties.leaseDuration().toMillis();
    this.retentionMillis = properties.retention().toMillis();
    this.graceNanos = properties.resumeGrace().toNanos();
    long renewMillis = Math.max(10, properties.leaseRenewInterval().toMillis());
    this.tickMillis =
        Math.max(50, Math.min(500, Math.min(renewMillis, properties.resumeGrace().toMillis() / 3)));
    this.presenceMillis = 3 * tickMillis;
  }

  /** How long a live stream's keys are kept: the retention, plus the lease that vouches for it. */
  long keepMillis() {
    return retentionMillis + leaseMillis;
  }

  <T> T script(String script, ScriptOutputType type, String[] keys, String... args) {
    return StreamScripts.run(redis, script, type, keys, args);
  }

  /** Up to {@link #PAGE} events after event {@code after}. */
  List<StreamMessage<String, String>> page(String messageId, long after) {
    return redis.xrange(
        StreamKeys.stream(messageId),
        Range.from(Range.Boundary.including((after + 1) + "-0"), Range.Boundary.unbounded()),
        Limit.from(PAGE));
  }

  long lastSeq(String messageId) {
    List<StreamMessage<String, String>> last =
        redis.xrevrange(StreamKeys.stream(messageId), Range.unbounded(), Limit.from(1));
    return last.isEmpty() ? 0 : StreamKeys.seq(last.get(0).getId());
  }

  /** The text of every message event of a stream, in order. */
  String collectText(String messageId) {
    StringBuilder text = new StringBuilder();
    long after = 0;
    while (true) {
      List<StreamMessage<String, String>> batch = page(messageId, after);
      for (StreamMessage<String, String> m : batch) {
        String delta = m.getBody().get("t");
        if (delta != null) {
          text.append(delta);
        }
        after = StreamKeys.seq(m.getId());
      }
      if (batch.size() < PAGE) {
        return text.toString();
      }
    }
  }

  /** The value of a pipelined command, or null when it failed or took over 2 s. */
  static <T> T await(RedisFuture<T> future) {
    try {
      return future.get(2, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return null;
    } catch (ExecutionException | TimeoutException e) {
      return null;
    }
  }
}
