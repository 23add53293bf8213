package io.selfhosted.gateway.chat;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.lettuce.core.Limit;
import io.lettuce.core.Range;
import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisCommandExecutionException;
import io.lettuce.core.RedisException;
import io.lettuce.core.RedisFuture;
import io.lettuce.core.ScriptOutputType;
import io.lettuce.core.SetArgs;
import io.lettuce.core.StreamMessage;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.api.async.RedisAsyncCommands;
import io.lettuce.core.api.sync.RedisCommands;
import io.lettuce.core.pubsub.RedisPubSubAdapter;
import io.lettuce.core.pubsub.StatefulRedisPubSubConnection;
import io.selfhosted.gateway.system.DaemonThreads;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
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
final class RedisStreamStore implements StreamStore, AutoCloseable {

  private static final Logger log = LoggerFactory.getLogger(RedisStreamStore.class);
  private static final int PAGE = 512;
  private static final String ABANDONED = "no client within the grace period";
  private static final String LOST = "the stream was ended by another gateway";
  private static final Map<String, String> SCRIPT_SHAS = new ConcurrentHashMap<>();

  // KEYS: meta, lease. ARGV: owner key, conversation, instance, lease ms, keep ms.
  private static final String CREATE =
      """
      redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'conversation', ARGV[2], 'instance', ARGV[3],
        'ended', '0')
      redis.call('PEXPIRE', KEYS[1], ARGV[5])
      redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
      return 1
      """;

  // KEYS: stream, meta. ARGV: max events, id, name, data, delta, wake channel, keep ms.
  private static final String APPEND =
      """
      if redis.call('HGET', KEYS[2], 'ended') == '1' then return 0 end
      redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[1], ARGV[2], 'e', ARGV[3], 'd', ARGV[4],
        't', ARGV[5])
      if ARGV[2] == '1-0' then redis.call('PEXPIRE', KEYS[1], ARGV[7]) end
      redis.call('PUBLISH', ARGV[6], ARGV[2])
      return 1
      """;

  // KEYS: stream, meta, lease. ARGV: max events, id, name, data, wake channel, retention ms.
  private static final String END =
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
  private static final String INTERRUPT =
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
  private static final String RENEW =
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
  private static final String REQUEST_CANCEL =
      """
      if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
      if redis.call('HGET', KEYS[1], 'ended') == '1' then return 0 end
      redis.call('HSET', KEYS[1], 'cancel', ARGV[1])
      redis.call('PUBLISH', ARGV[2], ARGV[3] .. '\\n' .. ARGV[1])
      return 1
      """;

  private final StatefulRedisConnection<String, String> connection;
  private final StatefulRedisPubSubConnection<String, String> pubsub;
  private final RedisCommands<String, String> redis;
  private final RedisAsyncCommands<String, String> async;
  private final String instance;
  private final ObjectMapper mapper = new ObjectMapper();
  private final Map<String, RedisWriter> writers = new ConcurrentHashMap<>();
  private final Map<String, Tail> tails = new ConcurrentHashMap<>();
  private final Set<String> orphansInFlight = ConcurrentHashMap.newKeySet();
  private final ScheduledExecutorService timers;
  private final ExecutorService work;
  private final long graceNanos;
  private final long leaseMillis;
  private final long retentionMillis;
  private final long presenceMillis;
  private final int maxEvents;
  private final AtomicBoolean closed = new AtomicBoolean();
  private long ticks; // only the timer thread
  private volatile Consumer<String> orphanHandler = this::interrupt;

  RedisStreamStore(RedisClient client, String instance, StreamProperties properties) {
    this.instance = instance;
    this.graceNanos = properties.resumeGrace().toNanos();
    this.leaseMillis = properties.leaseDuration().toMillis();
    this.retentionMillis = properties.retention().toMillis();
    this.maxEvents = properties.maxEvents();
    long renewMillis = Math.max(10, properties.leaseRenewInterval().toMillis());
    long tickMillis =
        Math.max(50, Math.min(500, Math.min(renewMillis, properties.resumeGrace().toMillis() / 3)));
    this.presenceMillis = 3 * tickMillis;
    this.connection = client.connect();
    this.redis = connection.sync();
    this.async = connection.async();
    this.pubsub = client.connectPubSub();
    this.work = Executors.newCachedThreadPool(DaemonThreads.named("stream-redis"));
    pubsub.addListener(
        new RedisPubSubAdapter<>() {
          @Override
          public void message(String channel, String message) {
            // On Lettuce's event loop: Redis calls must not run here.
            onMessage(channel, message);
          }
        });
    pubsub.sync().subscribe(cancelChannel(instance));
    this.timers =
        Executors.newSingleThreadScheduledExecutor(DaemonThreads.named("stream-redis-timers"));
    timers.scheduleWithFixedDelay(
        () -> guarded(this::tick), tickMillis, tickMillis, TimeUnit.MILLISECONDS);
    timers.scheduleWithFixedDelay(
        () -> guarded(this::renewLeases), renewMillis, renewMillis, TimeUnit.MILLISECONDS);
  }

  static String streamKey(String id) {
    return "gw:stream:{" + id + "}";
  }

  static String metaKey(String id) {
    return streamKey(id) + ":meta";
  }

  static String leaseKey(String id) {
    return streamKey(id) + ":lease";
  }

  static String readersKey(String id) {
    return streamKey(id) + ":readers";
  }

  static String wakeChannel(String id) {
    return streamKey(id) + ":wake";
  }

  static String cancelChannel(String instance) {
    return "gw:cancel:" + instance;
  }

  private static long seq(String entryId) {
    return Long.parseLong(entryId.substring(0, entryId.indexOf('-')));
  }

  private long keepMillis() {
    return retentionMillis + leaseMillis;
  }

  /**
   * Runs a script by its SHA-1 (EVALSHA), so that the script's text does not travel with every call
   * (an append runs once per token); a server that does not know it yet (first call, a restart)
   * gets it once through EVAL, which also caches it there.
   */
  private <T> T evalScript(String script, ScriptOutputType type, String[] keys, String... args) {
    String sha = SCRIPT_SHAS.computeIfAbsent(script, redis::digest); // computed here, not in Redis
    try {
      return redis.evalsha(sha, type, keys, args);
    } catch (RedisCommandExecutionException e) {
      if (e.getMessage() == null || !e.getMessage().startsWith("NOSCRIPT")) {
        throw e;
      }
      return redis.eval(script, type, keys, args);
    }
  }

  @Override
  public StreamWriter create(
      String messageId, String conversationId, String ownerKeyId, Consumer<String> cancel) {
    evalScript(
        CREATE,
        ScriptOutputType.INTEGER,
        new String[] {metaKey(messageId), leaseKey(messageId)},
        ownerKeyId,
        conversationId,
        instance,
        Long.toString(leaseMillis),
        Long.toString(keepMillis()));
    RedisWriter writer =
        new RedisWriter(
            messageId, cancel, new RedisView(messageId, conversationId, ownerKeyId, instance));
    writers.put(messageId, writer);
    return writer;
  }

  @Override
  public Optional<ResumableStream> find(String messageId) {
    Map<String, String> meta = redis.hgetall(metaKey(messageId));
    if (meta == null || !meta.containsKey("owner")) {
      return Optional.empty();
    }
    return Optional.of(
        new RedisView(
            messageId, meta.get("conversation"), meta.get("owner"), meta.get("instance")));
  }

  @Override
  public void cancel(ResumableStream stream, String why) {
    RedisWriter local = writers.get(stream.messageId());
    if (local != null) {
      local.cancel.accept(why);
      return;
    }
    String owner = stream instanceof RedisView view ? view.instance() : null;
    Long asked =
        evalScript(
            REQUEST_CANCEL,
            ScriptOutputType.INTEGER,
            new String[] {metaKey(stream.messageId())},
            why,
            cancelChannel(owner == null ? "" : owner),
            stream.messageId());
    if (asked == null || asked == 0) {
      return;
    }
    // The owner ends the stream within a round trip; waiting for it lets the caller's reply show
    // the stored outcome, as it does on the owner. A dead owner's stream ends by its lease.
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(2);
    while (System.nanoTime() < deadline
        && !"1".equals(redis.hget(metaKey(stream.messageId()), "ended"))) {
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
    if (redis.exists(metaKey(messageId)) == 0) {
      return Optional.empty();
    }
    return Optional.of(collectText(messageId));
  }

  private String collectText(String messageId) {
    StringBuilder text = new StringBuilder();
    long after = 0;
    while (true) {
      List<StreamMessage<String, String>> batch = page(messageId, after);
      for (StreamMessage<String, String> m : batch) {
        String delta = m.getBody().get("t");
        if (delta != null) {
          text.append(delta);
        }
        after = seq(m.getId());
      }
      if (batch.size() < PAGE) {
        return text.toString();
      }
    }
  }

  private List<StreamMessage<String, String>> page(String messageId, long after) {
    return redis.xrange(
        streamKey(messageId),
        Range.from(Range.Boundary.including((after + 1) + "-0"), Range.Boundary.unbounded()),
        Limit.from(PAGE));
  }

  private long lastSeq(String messageId) {
    List<StreamMessage<String, String>> last =
        redis.xrevrange(streamKey(messageId), Range.unbounded(), Limit.from(1));
    return last.isEmpty() ? 0 : seq(last.get(0).getId());
  }

  @Override
  public Optional<String> interrupt(String messageId) {
    ObjectNode data = mapper.createObjectNode().put("message_id", messageId);
    data.putObject("error")
        .put("message", "the gateway generating this answer stopped before it ended")
        .put("type", "server_error")
        .put("code", "generation_interrupted");
    Long claimed =
        evalScript(
            INTERRUPT,
            ScriptOutputType.INTEGER,
            new String[] {streamKey(messageId), metaKey(messageId), leaseKey(messageId)},
            Integer.toString(maxEvents),
            data.toString(),
            wakeChannel(messageId),
            Long.toString(retentionMillis));
    if (claimed == null || claimed < 0) {
      return Optional.empty();
    }
    log.warn("stream of message {} ended as interrupted: its gateway's lease ran out", messageId);
    return Optional.of(collectText(messageId));
  }

  @Override
  public void onOrphan(Consumer<String> handler) {
    this.orphanHandler = handler;
  }

  @Override
  public String kind() {
    return "redis";
  }

  private void onMessage(String channel, String message) {
    if (channel.equals(cancelChannel(instance))) {
      int newline = message.indexOf('\n');
      String messageId = newline < 0 ? message : message.substring(0, newline);
      String why = newline < 0 ? "cancelled" : message.substring(newline + 1);
      RedisWriter writer = writers.get(messageId);
      if (writer != null) {
        work.execute(() -> writer.requestCancel(why));
      }
      return;
    }
    String prefix = "gw:stream:{";
    String suffix = "}:wake";
    if (channel.startsWith(prefix) && channel.endsWith(suffix)) {
      Tail tail = tails.get(channel.substring(prefix.length(), channel.length() - suffix.length()));
      if (tail != null) {
        tail.schedulePump();
      }
    }
  }

  /**
   * Readers: presence, the owner's lease, and now and then a read in case a wake-up was lost
   * (pub/sub drops messages while it reconnects). Owners: the grace period.
   */
  private void tick() {
    boolean sweepReads = ++ticks % 4 == 0;
    List<RedisFuture<?>> pending = new ArrayList<>();
    Map<Tail, RedisFuture<Long>> leases = new ConcurrentHashMap<>();
    Map<Tail, RedisFuture<String>> ended = new ConcurrentHashMap<>();
    for (Tail tail : tails.values()) {
      pending.add(async.set(readersKey(tail.messageId), "1", SetArgs.Builder.px(presenceMillis)));
      leases.put(tail, async.exists(leaseKey(tail.messageId)));
      ended.put(tail, async.hget(metaKey(tail.messageId), "ended"));
    }
    Map<RedisWriter, RedisFuture<Long>> presence = new ConcurrentHashMap<>();
    for (RedisWriter writer : writers.values()) {
      if (writer.watchesGrace()) {
        presence.put(writer, async.exists(readersKey(writer.messageId)));
      }
    }
    for (var entry : leases.entrySet()) {
      Tail tail = entry.getKey();
      if (sweepReads) {
        tail.schedulePump();
      }
      Long lease = await(entry.getValue());
      String end = await(ended.get(tail));
      if ("1".equals(end)) {
        tail.schedulePump();
      } else if (lease != null && lease == 0 && end != null) {
        orphaned(tail.messageId);
      }
    }
    long now = System.nanoTime();
    for (var entry : presence.entrySet()) {
      Long present = await(entry.getValue());
      entry.getKey().checkGrace(present != null && present > 0, now);
    }
    pending.forEach(RedisStreamStore::await);
  }

  private void orphaned(String messageId) {
    if (!orphansInFlight.add(messageId)) {
      return;
    }
    work.execute(
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

  /** Renews the lease of every live generation of this gateway, and picks up missed cancels. */
  private void renewLeases() {
    Map<RedisWriter, RedisFuture<String>> renewed = new ConcurrentHashMap<>();
    for (RedisWriter writer : writers.values()) {
      String id = writer.messageId;
      renewed.put(
          writer,
          async.eval(
              RENEW,
              ScriptOutputType.VALUE,
              new String[] {streamKey(id), metaKey(id), leaseKey(id)},
              instance,
              Long.toString(leaseMillis),
              Long.toString(keepMillis())));
    }
    for (var entry : renewed.entrySet()) {
      String answer = await(entry.getValue());
      if ("ended".equals(answer)) {
        entry.getKey().lost();
      } else if (answer != null && !answer.isEmpty()) {
        entry.getKey().requestCancel(answer);
      }
    }
  }

  private static <T> T await(RedisFuture<T> future) {
    try {
      return future.get(2, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return null;
    } catch (ExecutionException | TimeoutException e) {
      return null;
    }
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
    timers.shutdownNow();
    work.shutdownNow();
    pubsub.close();
    connection.close(); // the client is shared: its owner shuts it down
  }

  /** What a reader on any replica knows of a stream: enough to check ownership and resume. */
  private final class RedisView implements ResumableStream {
    private final String messageId;
    private final String conversationId;
    private final String ownerKeyId;
    private final String instance;

    RedisView(String messageId, String conversationId, String ownerKeyId, String instance) {
      this.messageId = messageId;
      this.conversationId = conversationId;
      this.ownerKeyId = ownerKeyId;
      this.instance = instance;
    }

    String instance() {
      return instance;
    }

    @Override
    public String messageId() {
      return messageId;
    }

    @Override
    public String conversationId() {
      return conversationId;
    }

    @Override
    public String ownerKeyId() {
      return ownerKeyId;
    }

    @Override
    public Resume checkResume(long lastEventId) {
      // Ended first: a stream seen ended has its final event among the ones counted next.
      boolean ended = "1".equals(redis.hget(metaKey(messageId), "ended"));
      long last = lastSeq(messageId);
      if (lastEventId < 0 || lastEventId > last) {
        return Resume.BEYOND_STREAM;
      }
      return ended && lastEventId == last ? Resume.NOTHING_LEFT : Resume.OK;
    }

    @Override
    public void attach(long lastEventId, EventSink sink) {
      Reader reader = new Reader(messageId, sink, lastEventId);
      Tail tail =
          tails.compute(
              messageId,
              (id, t) -> {
                Tail next = t == null ? new Tail(id) : t;
                next.readers.add(reader);
                return next;
              });
      await(tail.subscribed);
      redis.set(readersKey(messageId), "1", SetArgs.Builder.px(presenceMillis));
      reader.pump();
    }

    @Override
    public void detach(EventSink sink) {
      Tail tail = tails.get(messageId);
      if (tail != null) {
        for (Reader reader : tail.readers) {
          if (reader.sink == sink) {
            leave(reader);
          }
        }
      }
    }
  }

  private void leave(Reader reader) {
    reader.done = true;
    tails.computeIfPresent(
        reader.messageId,
        (id, tail) -> {
          tail.readers.remove(reader);
          if (tail.readers.isEmpty()) {
            pubsub.async().unsubscribe(wakeChannel(id));
            return null;
          }
          return tail;
        });
  }

  /** The readers of one stream on this gateway, and its wake-up subscription. */
  private final class Tail {
    final String messageId;
    final Set<Reader> readers = ConcurrentHashMap.newKeySet();
    final AtomicBoolean pumpPending = new AtomicBoolean();
    final RedisFuture<Void> subscribed;

    Tail(String messageId) {
      this.messageId = messageId;
      this.subscribed = pubsub.async().subscribe(wakeChannel(messageId));
    }

    void schedulePump() {
      if (!pumpPending.compareAndSet(false, true)) {
        return;
      }
      work.execute(
          () -> {
            pumpPending.set(false);
            for (Reader reader : readers) {
              reader.pump();
            }
          });
    }
  }

  /**
   * One attached client: sends the events after the last one it sent, in order and once (each read
   * starts after that id, under this reader's lock), and closes after the final event.
   */
  private final class Reader {
    final String messageId;
    final EventSink sink;
    long lastSent;
    volatile boolean done;

    Reader(String messageId, EventSink sink, long lastSent) {
      this.messageId = messageId;
      this.sink = sink;
      this.lastSent = lastSent;
    }

    synchronized void pump() {
      try {
        while (!done) {
          List<StreamMessage<String, String>> batch = page(messageId, lastSent);
          for (StreamMessage<String, String> m : batch) {
            long seq = seq(m.getId());
            if (seq <= lastSent) {
              continue;
            }
            Map<String, String> body = m.getBody();
            String frame = new GenerationStream.Event(seq, body.get("e"), body.get("d")).frame();
            if (!sink.send(frame)) {
              leave(this);
              return;
            }
            lastSent = seq;
            if ("1".equals(body.get("f"))) {
              leave(this);
              sink.close();
              return;
            }
          }
          if (batch.size() < PAGE) {
            return;
          }
        }
      } catch (RedisException e) {
        // The next wake-up or tick reads again from the same place.
        log.warn("reading the stream of message {} failed: {}", messageId, e.toString());
      }
    }
  }

  /** The owner's side: appends in order with explicit ids, ends once, watches the grace. */
  private final class RedisWriter implements StreamWriter {
    final String messageId;
    final Consumer<String> cancel;
    private final RedisView view;
    private final StringBuilder text = new StringBuilder();
    private long seq;
    private boolean ending;
    private volatile boolean stopping;
    private volatile long lastReadNanos = System.nanoTime();

    RedisWriter(String messageId, Consumer<String> cancel, RedisView view) {
      this.messageId = messageId;
      this.cancel = cancel;
      this.view = view;
    }

    @Override
    public ResumableStream reader() {
      return view;
    }

    @Override
    public String messageId() {
      return messageId;
    }

    @Override
    public String conversationId() {
      return view.conversationId();
    }

    @Override
    public synchronized String text() {
      return text.toString();
    }

    @Override
    public synchronized void appendText(String delta, String data) {
      if (ending || stopping) {
        return;
      }
      text.append(delta);
      seq++;
      Long appended;
      try {
        appended =
            evalScript(
                APPEND,
                ScriptOutputType.INTEGER,
                new String[] {streamKey(messageId), metaKey(messageId)},
                Integer.toString(maxEvents),
                seq + "-0",
                "message",
                data,
                delta,
                wakeChannel(messageId),
                Long.toString(keepMillis()));
      } catch (RedisException e) {
        // A lost event would be a silent gap for every reader: stop instead.
        log.error("could not append to the stream of message {}: {}", messageId, e.toString());
        stop("the stream could not be written");
        return;
      }
      if (appended == null || appended == 0) {
        lost();
      }
    }

    @Override
    public synchronized boolean beginEnd() {
      if (ending) {
        return false;
      }
      ending = true;
      return true;
    }

    @Override
    public synchronized void end(String name, String data) {
      writers.remove(messageId);
      seq++;
      try {
        Long ended =
            evalScript(
                END,
                ScriptOutputType.INTEGER,
                new String[] {streamKey(messageId), metaKey(messageId), leaseKey(messageId)},
                Integer.toString(maxEvents),
                seq + "-0",
                name,
                data,
                wakeChannel(messageId),
                Long.toString(retentionMillis));
        if (ended == null || ended == 0) {
          log.warn("message {} ended here after another gateway ended its stream", messageId);
        }
      } catch (RedisException e) {
        // Readers get the interruption once this gateway's lease runs out.
        log.error("could not end the stream of message {}: {}", messageId, e.toString());
      }
    }

    @Override
    public void scheduleGraceIfUnattended() {
      lastReadNanos = System.nanoTime();
    }

    boolean watchesGrace() {
      synchronized (this) {
        return !ending && !stopping;
      }
    }

    void checkGrace(boolean someoneReads, long now) {
      if (someoneReads) {
        lastReadNanos = now;
      } else if (now - lastReadNanos >= graceNanos) {
        stop(ABANDONED);
      }
    }

    void requestCancel(String why) {
      cancel.accept(why);
    }

    /** Another replica ended the stream (this gateway's lease lapsed): nobody can read on. */
    void lost() {
      stop(LOST);
    }

    private void stop(String why) {
      synchronized (this) {
        if (stopping || ending) {
          return;
        }
        stopping = true;
      }
      work.execute(() -> cancel.accept(why));
    }
  }
}
