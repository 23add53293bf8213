package io.selfhosted.gateway.stream.redis;

import io.lettuce.core.RedisException;
import io.lettuce.core.RedisFuture;
import io.lettuce.core.SetArgs;
import io.lettuce.core.StreamMessage;
import io.selfhosted.gateway.sse.EventSink;
import io.selfhosted.gateway.stream.GenerationStream;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The clients attached on this gateway to streams in Redis, whichever gateway writes them. Readers
 * are woken by a publish on the stream's wake channel after each append and read the events
 * themselves (a wake-up is only a hint: the store's tick reads now and then anyway).
 */
final class StreamReaders {

  private static final Logger log = LoggerFactory.getLogger(StreamReaders.class);

  private final StreamContext ctx;
  private final Map<String, Tail> tails = new ConcurrentHashMap<>();

  StreamReaders(StreamContext ctx) {
    this.ctx = ctx;
  }

  /** The streams read here, with their readers. */
  Collection<Tail> tails() {
    return tails.values();
  }

  /** Sends every event after {@code lastEventId}, then keeps the sink attached for live ones. */
  void attach(String messageId, long lastEventId, EventSink sink) {
    Reader reader = new Reader(messageId, sink, lastEventId);
    Tail tail =
        tails.compute(
            messageId,
            (id, t) -> {
              Tail next = t == null ? new Tail(id) : t;
              next.readers.add(reader);
              return next;
            });
    StreamContext.await(tail.subscribed);
    ctx.redis.set(StreamKeys.readers(messageId), "1", SetArgs.Builder.px(ctx.presenceMillis));
    reader.pump();
  }

  void detach(String messageId, EventSink sink) {
    Tail tail = tails.get(messageId);
    if (tail != null) {
      for (Reader reader : tail.readers) {
        if (reader.sink == sink) {
          leave(reader);
        }
      }
    }
  }

  /** A wake-up arrived for a stream: its readers here read on. */
  void wake(String messageId) {
    Tail tail = tails.get(messageId);
    if (tail != null) {
      tail.schedulePump();
    }
  }

  private void leave(Reader reader) {
    reader.done = true;
    tails.computeIfPresent(
        reader.messageId,
        (id, tail) -> {
          tail.readers.remove(reader);
          if (tail.readers.isEmpty()) {
            ctx.pubsub.async().unsubscribe(StreamKeys.wakeChannel(id));
            return null;
          }
          return tail;
        });
  }

  /** The readers of one stream on this gateway, and its wake-up subscription. */
  final class Tail {
    final String messageId;
    private final Set<Reader> readers = ConcurrentHashMap.newKeySet();
    private final AtomicBoolean pumpPending = new AtomicBoolean();
    private final RedisFuture<Void> subscribed;

    private Tail(String messageId) {
      this.messageId = messageId;
      this.subscribed = ctx.pubsub.async().subscribe(StreamKeys.wakeChannel(messageId));
    }

    void schedulePump() {
      if (!pumpPending.compareAndSet(false, true)) {
        return;
      }
      ctx.work.execute(
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
    private final String messageId;
    private final EventSink sink;
    private long lastSent;
    private volatile boolean done;

    private Reader(String messageId, EventSink sink, long lastSent) {
      this.messageId = messageId;
      this.sink = sink;
      this.lastSent = lastSent;
    }

    synchronized void pump() {
      try {
        while (!done) {
          List<StreamMessage<String, String>> batch = ctx.page(messageId, lastSent);
          for (StreamMessage<String, String> m : batch) {
            long seq = StreamKeys.seq(m.getId());
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
          if (batch.size() < StreamContext.PAGE) {
            return;
          }
        }
      } catch (RedisException e) {
        // The next wake-up or tick reads again from the same place.
        log.warn("reading the stream of message {} failed: {}", messageId, e.toString());
      }
    }
  }
}
