package io.selfhosted.gateway.stream.redis;

import io.lettuce.core.RedisException;
import io.lettuce.core.ScriptOutputType;
import io.selfhosted.gateway.stream.ResumableStream;
import io.selfhosted.gateway.stream.StreamWriter;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The owner's side of a stream in Redis: appends in order with explicit ids, ends once, and watches
 * the resume grace.
 */
final class RedisWriter implements StreamWriter {

  private static final Logger log = LoggerFactory.getLogger(RedisWriter.class);
  private static final String ABANDONED = "no client within the grace period";
  private static final String LOST = "the stream was ended by another gateway";

  private final StreamContext ctx;
  private final String messageId;
  private final Consumer<String> cancel;
  private final RedisView view;
  private final Runnable onEnd;
  private final StringBuilder text = new StringBuilder();
  private long seq;
  private boolean ending;
  private volatile boolean stopping;
  private volatile long lastReadNanos = System.nanoTime();

  /**
   * @param cancel stops the generation, with the reason
   * @param onEnd runs when the final event is written (the store forgets the writer)
   */
  RedisWriter(
      StreamContext ctx,
      String messageId,
      Consumer<String> cancel,
      RedisView view,
      Runnable onEnd) {
    this.ctx = ctx;
    this.messageId = messageId;
    this.cancel = cancel;
    this.view = view;
    this.onEnd = onEnd;
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
          ctx.script(
              StreamScripts.APPEND,
              ScriptOutputType.INTEGER,
              new String[] {StreamKeys.stream(messageId), StreamKeys.meta(messageId)},
              Integer.toString(ctx.maxEvents),
              seq + "-0",
              "message",
              data,
              delta,
              StreamKeys.wakeChannel(messageId),
              Long.toString(ctx.keepMillis()));
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
    onEnd.run();
    seq++;
    try {
      Long ended =
          ctx.script(
              StreamScripts.END,
              ScriptOutputType.INTEGER,
              new String[] {
                StreamKeys.stream(messageId),
                StreamKeys.meta(messageId),
                StreamKeys.lease(messageId)
              },
              Integer.toString(ctx.maxEvents),
              seq + "-0",
              name,
              data,
              StreamKeys.wakeChannel(messageId),
              Long.toString(ctx.retentionMillis));
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
    } else if (now - lastReadNanos >= ctx.graceNanos) {
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
    ctx.work.execute(() -> cancel.accept(why));
  }
}
