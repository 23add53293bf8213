package io.selfhosted.gateway.stream.redis;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisFuture;
import io.lettuce.core.ScriptOutputType;
import io.lettuce.core.SetArgs;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.pubsub.RedisPubSubAdapter;
import io.lettuce.core.pubsub.StatefulRedisPubSubConnection;
import io.selfhosted.gateway.stream.ResumableStream;
import io.selfhosted.gateway.stream.StreamProperties;
import io.selfhosted.gateway.stream.StreamStore;
import io.selfhosted.gateway.stream.StreamWriter;
import io.selfhosted.gateway.system.DaemonThreads;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Product streams in Redis, shared by every gateway replica, so that a browser resumes on whichever
 * replica its reconnect reaches. Per answer (the braces keep one answer's keys in one cluster
 * slot):
 *
 * <ul>
 *   <li>{@code gw:stream:{id}}: a Redis Stream of the events, entry id {@code <seq>-0}, so that
 *       {@code Last-Event-ID: n} reads from {@code n+1-0}; fields {@code e} (event name), {@code d}
 *       (data), {@code t} (text delta), {@code f} (set on the final event); capped at {@code
 *       max-events};
 *   <li>{@code gw:stream:{id}:meta}: a hash of the owner API key, the conversation, the owning
 *       gateway instance, {@code ended}, and a {@code cancel} request;
 *   <li>{@code gw:stream:{id}:lease}: the owning instance, with a TTL of the lease duration,
 *       renewed by the owner; gone while the stream is unended means the owner died;
 *   <li>{@code gw:stream:{id}:readers}: refreshed by every gateway with a reader attached; the
 *       owner cancels the generation once it has been missing for the resume grace.
 * </ul>
 *
 * Stream and meta live for retention + lease while the answer is live and for the retention after
 * its end. Appends, the end, renewals and the interruption are Lua scripts, so an interrupted
 * stream gets exactly one final event whoever races. Readers are woken by a publish on {@code
 * gw:stream:{id}:wake} after each append and read the events themselves with XRANGE (a wake-up is
 * only a hint, and every tick reads anyway); cancels travel on {@code gw:cancel:<instance>}.
 */
public final class RedisStreamStore implements StreamStore, AutoCloseable {

  private static final Logger log = LoggerFactory.getLogger(RedisStreamStore.class);

  private final StatefulRedisConnection<String, String> connection;
  private final StatefulRedisPubSubConnection<String, String> pubsub;
  private final StreamContext ctx;
  private final StreamReaders readers;
  private final ObjectMapper mapper = new ObjectMapper();
  private final Map<String, RedisWriter> writers = new ConcurrentHashMap<>();
  private final Set<String> orphansInFlight = ConcurrentHashMap.newKeySet();
  private final ScheduledExecutorService timer;
  private final AtomicBoolean closed = new AtomicBoolean();
  private long ticks; // only the timer thread
  private volatile Consumer<String> orphanHandler = this::interrupt;

  /** A store on the gateway's one Redis client, which it does not own (nor shut down). */
  public RedisStreamStore(RedisClient client, String instance, StreamProperties properties) {
    this.connection = client.connect();
    this.pubsub = client.connectPubSub();
    this.ctx =
        new StreamContext(
            connection.sync(),
            connection.async(),
            pubsub,
            Executors.newCachedThreadPool(DaemonThreads.named("stream-redis")),
            instance,
            properties);
    this.readers = new StreamReaders(ctx);
    pubsub.addListener(
        new RedisPubSubAdapter<>() {
          @Override
          public void message(String channel, String message) {
            // On Lettuce's event loop: Redis calls must not run here.
            onMessage(channel, message);
          }
        });
    pubsub.sync().subscribe(StreamKeys.cancelChannel(instance));
    this.timer =
        Executors.newSingleThreadScheduledExecutor(DaemonThreads.named("stream-redis-timer"));
    timer.scheduleWithFixedDelay(
        () -> guarded(this::tick), ctx.tickMillis, ctx.tickMillis, TimeUnit.MILLISECONDS);
  }

  /** The key of a stream's owner lease (for tests that watch it). */
  static String leaseKey(String id) {
    return StreamKeys.lease(id);
  }

  @Override
  public StreamWriter create(
      String messageId, String conversationId, String ownerKeyId, Consumer<String> cancel) {
    ctx.script(
        StreamScripts.CREATE,
        ScriptOutputType.INTEGER,
        new String[] {StreamKeys.meta(messageId), StreamKeys.lease(messageId)},
        ownerKeyId,
        conversationId,
        ctx.instance,
        Long.toString(ctx.leaseMillis),
        Long.toString(ctx.keepMillis()));
    RedisView view =
        new RedisView(ctx, readers, messageId, conversationId, ownerKeyId, ctx.instance);
    RedisWriter writer =
        new RedisWriter(ctx, messageId, cancel, view, () -> writers.remove(messageId));
    writers.put(messageId, writer);
    return writer;
  }

  @Override
  public Optional<ResumableStream> find(String messageId) {
    Map<String, String> meta = ctx.redis.hgetall(StreamKeys.meta(messageId));
    if (meta == null || !meta.containsKey("owner")) {
      return Optional.empty();
    }
    return Optional.of(
        new RedisView(
            ctx,
            readers,
            messageId,
            meta.get("conversation"),
            meta.get("owner"),
            meta.get("instance")));
  }

  @Override
  public void cancel(ResumableStream stream, String why) {
    RedisWriter local = writers.get(stream.messageId());
    if (local != null) {
      local.requestCancel(why);
      return;
    }
    String owner = stream instanceof RedisView view ? view.instance() : null;
    String meta = StreamKeys.meta(stream.messageId());
    Long asked =
        ctx.script(
            StreamScripts.REQUEST_CANCEL,
            ScriptOutputType.INTEGER,
            new String[] {meta},
            why,
            StreamKeys.cancelChannel(owner == null ? "" : owner),
            stream.messageId());
    if (asked == null || asked == 0) {
      return;
    }
    // The owner ends the stream within a round trip; waiting for it lets the caller's reply show
    // the stored outcome, as it does on the owner. A dead owner's stream ends by its lease.
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(2);
    while (System.nanoTime() < deadline && !"1".equals(ctx.redis.hget(meta, "ended"))) {
      try {
        Thread.sleep(20);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return;
      }
    }
  }

  @Override
  public Optional<String> liveText(String messageId) {
    RedisWriter local = writers.get(messageId);
    if (local != null) {
      return Optional.of(local.text());
    }
    if (ctx.redis.exists(StreamKeys.meta(messageId)) == 0) {
      return Optional.empty();
    }
    return Optional.of(ctx.collectText(messageId));
  }

  @Override
  public Optional<String> interrupt(String messageId) {
    ObjectNode data = mapper.createObjectNode().put("message_id", messageId);
    data.putObject("error")
        .put("message", "the gateway generating this answer stopped before it ended")
        .put("type", "server_error")
        .put("code", "generation_interrupted");
    Long claimed =
        ctx.script(
            StreamScripts.INTERRUPT,
            ScriptOutputType.INTEGER,
            new String[] {
              StreamKeys.stream(messageId), StreamKeys.meta(messageId), StreamKeys.lease(messageId)
            },
            Integer.toString(ctx.maxEvents),
            data.toString(),
            StreamKeys.wakeChannel(messageId),
            Long.toString(ctx.retentionMillis));
    if (claimed == null || claimed < 0) {
      return Optional.empty();
    }
    log.warn("stream of message {} ended as interrupted: its gateway's lease ran out", messageId);
    return Optional.of(ctx.collectText(messageId));
  }

  @Override
  public void onOrphan(Consumer<String> handler) {
    this.orphanHandler = handler;
  }

  /** Renews the lease of every live generation of this gateway, and picks up missed cancels. */
  @Override
  public void renewLeases() {
    Map<RedisWriter, RedisFuture<String>> renewed = new ConcurrentHashMap<>();
    for (RedisWriter writer : writers.values()) {
      String id = writer.messageId();
      renewed.put(
          writer,
          ctx.async.eval(
              StreamScripts.RENEW,
              ScriptOutputType.VALUE,
              new String[] {StreamKeys.stream(id), StreamKeys.meta(id), StreamKeys.lease(id)},
              ctx.instance,
              Long.toString(ctx.leaseMillis),
              Long.toString(ctx.keepMillis())));
    }
    for (var entry : renewed.entrySet()) {
      String answer = StreamContext.await(entry.getValue());
      if ("ended".equals(answer)) {
        entry.getKey().lost();
      } else if (answer != null && !answer.isEmpty()) {
        entry.getKey().requestCancel(answer);
      }
    }
  }

  @Override
  public String kind() {
    return "redis";
  }

  private void onMessage(String channel, String message) {
    if (channel.equals(StreamKeys.cancelChannel(ctx.instance))) {
      int newline = message.indexOf('\n');
      String messageId = newline < 0 ? message : message.substring(0, newline);
      String why = newline < 0 ? "cancelled" : message.substring(newline + 1);
      RedisWriter writer = writers.get(messageId);
      if (writer != null) {
        ctx.work.execute(() -> writer.requestCancel(why));
      }
      return;
    }
    String woken = StreamKeys.ofWakeChannel(channel);
    if (woken != null) {
      readers.wake(woken);
    }
  }

  /**
   * Readers: presence, the owner's lease, and now and then a read in case a wake-up was lost
   * (pub/sub drops messages while it reconnects). Owners: the grace period.
   */
  private void tick() {
    boolean sweepReads = ++ticks % 4 == 0;
    List<RedisFuture<?>> pending = new ArrayList<>();
    Map<StreamReaders.Tail, RedisFuture<Long>> leases = new ConcurrentHashMap<>();
    Map<StreamReaders.Tail, RedisFuture<String>> ended = new ConcurrentHashMap<>();
    for (StreamReaders.Tail tail : readers.tails()) {
      String id = tail.messageId;
      pending.add(
          ctx.async.set(StreamKeys.readers(id), "1", SetArgs.Builder.px(ctx.presenceMillis)));
      leases.put(tail, ctx.async.exists(StreamKeys.lease(id)));
      ended.put(tail, ctx.async.hget(StreamKeys.meta(id), "ended"));
    }
    Map<RedisWriter, RedisFuture<Long>> presence = new ConcurrentHashMap<>();
    for (RedisWriter writer : writers.values()) {
      if (writer.watchesGrace()) {
        presence.put(writer, ctx.async.exists(StreamKeys.readers(writer.messageId())));
      }
    }
    for (var entry : leases.entrySet()) {
      StreamReaders.Tail tail = entry.getKey();
      if (sweepReads) {
        tail.schedulePump();
      }
      Long lease = StreamContext.await(entry.getValue());
      String end = StreamContext.await(ended.get(tail));
      if ("1".equals(end)) {
        tail.schedulePump();
      } else if (lease != null && lease == 0 && end != null) {
        orphaned(tail.messageId);
      }
    }
    long now = System.nanoTime();
    for (var entry : presence.entrySet()) {
      Long present = StreamContext.await(entry.getValue());
      entry.getKey().checkGrace(present != null && present > 0, now);
    }
    pending.forEach(StreamContext::await);
  }

  private void orphaned(String messageId) {
    if (!orphansInFlight.add(messageId)) {
      return;
    }
    ctx.work.execute(
        () -> {
          try {
            orphanHandler.accept(messageId);
          } catch (RuntimeException e) {
            log.warn(
                "could not end the orphaned stream of message {}: {}", messageId, e.toString());
          } finally {
            orphansInFlight.remove(messageId);
          }
        });
  }

  private static void guarded(Runnable task) {
    try {
      task.run();
    } catch (RuntimeException e) {
      log.warn("stream upkeep in Redis failed: {}", e.toString());
    }
  }

  @Override
  public void close() {
    if (!closed.compareAndSet(false, true)) {
      return;
    }
    timer.shutdownNow();
    ctx.work.shutdownNow();
    pubsub.close();
    connection.close(); // the client is shared: its owner shuts it down
  }
}
