package io.selfhosted.gateway.stream;

import io.selfhosted.gateway.sse.EventSink;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ScheduledFuture;
import java.util.function.Consumer;

/**
 * The in-process resume buffer of one assistant message: every event with its sequence number, the
 * text so far, and the clients attached. A reconnect replays from any event id exactly once, under
 * the same lock that appends, so nothing is lost or repeated between replay and live events.
 */
public final class GenerationStream implements ResumableStream, StreamWriter {

  /** One product event; {@code id} is its 1-based sequence number. */
  public record Event(long id, String name, String data) {
    public String frame() {
      return "id: " + id + "\nevent: " + name + "\ndata: " + data + "\n\n";
    }
  }

  private final String messageId;
  private final String conversationId;
  private final String ownerKeyId;
  private final List<Event> events = new ArrayList<>();
  private final Set<EventSink> sinks = new LinkedHashSet<>();
  private final StringBuilder text = new StringBuilder();
  private boolean ending;
  private boolean ended;
  private long endedAtNanos;
  private ScheduledFuture<?> graceTimer;
  private final GraceTimer grace;
  private Consumer<String> canceller = why -> {};

  GenerationStream(String messageId, String conversationId, String ownerKeyId, GraceTimer grace) {
    this.messageId = messageId;
    this.conversationId = conversationId;
    this.ownerKeyId = ownerKeyId;
    this.grace = grace;
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
  public ResumableStream reader() {
    return this;
  }

  @Override
  public synchronized String text() {
    return text.toString();
  }

  synchronized boolean isEnded() {
    return ended;
  }

  synchronized long endedAtNanos() {
    return endedAtNanos;
  }

  synchronized int eventCount() {
    return events.size();
  }

  /** Installs what stops the generation: at the end of the grace period, or on a cancel. */
  synchronized void onCancel(Consumer<String> action) {
    this.canceller = action;
  }

  /** Stops the generation (it ends the stream through the usual end). */
  void cancel(String why) {
    Consumer<String> action;
    synchronized (this) {
      action = canceller;
    }
    action.accept(why);
  }

  @Override
  public synchronized Resume checkResume(long lastEventId) {
    if (lastEventId < 0 || lastEventId > events.size()) {
      return Resume.BEYOND_STREAM;
    }
    return ended && lastEventId == events.size() ? Resume.NOTHING_LEFT : Resume.OK;
  }

  @Override
  public synchronized void attach(long lastEventId, EventSink sink) {
    for (int i = (int) Math.max(0, lastEventId); i < events.size(); i++) {
      if (!sink.send(events.get(i).frame())) {
        scheduleGraceIfUnattended();
        return;
      }
    }
    if (ended) {
      sink.close();
      return;
    }
    sinks.add(sink);
    if (graceTimer != null) {
      graceTimer.cancel(false);
      graceTimer = null;
    }
  }

  @Override
  public synchronized void detach(EventSink sink) {
    if (sinks.remove(sink)) {
      scheduleGraceIfUnattended();
    }
  }

  @Override
  public synchronized void scheduleGraceIfUnattended() {
    if (!ending && sinks.isEmpty() && graceTimer == null) {
      graceTimer = grace.schedule(() -> cancel("no client within the grace period"));
    }
  }

  @Override
  public synchronized void appendText(String delta, String data) {
    if (ending) {
      return;
    }
    text.append(delta);
    publish("message", data);
  }

  @Override
  public synchronized boolean beginEnd() {
    if (ending) {
      return false;
    }
    ending = true;
    if (graceTimer != null) {
      graceTimer.cancel(false);
      graceTimer = null;
    }
    return true;
  }

  @Override
  public synchronized void end(String name, String data) {
    publish(name, data);
    ended = true;
    endedAtNanos = System.nanoTime();
    // Closing a sink calls back into detach(): iterate over a copy.
    List<EventSink> attached = List.copyOf(sinks);
    sinks.clear();
    for (EventSink sink : attached) {
      sink.close();
    }
  }

  private void publish(String name, String data) {
    Event event = new Event(events.size() + 1, name, data);
    events.add(event);
    String frame = event.frame();
    for (EventSink sink : List.copyOf(sinks)) {
      if (!sink.send(frame)) {
        sinks.remove(sink);
      }
    }
    scheduleGraceIfUnattended();
  }

  /** Schedules the grace-period action; a seam for tests. */
  interface GraceTimer {
    ScheduledFuture<?> schedule(Runnable action);
  }
}
