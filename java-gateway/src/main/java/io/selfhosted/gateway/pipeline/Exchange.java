package io.selfhosted.gateway.pipeline;

import io.selfhosted.gateway.auth.Caller;
import io.selfhosted.gateway.upstream.ChatCall;
import io.selfhosted.gateway.upstream.TokenEstimate;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import org.springframework.lang.Nullable;

/**
 * One generation request as every stage sees it, whatever API it came through: who asks, for which
 * model, the upstream call, and what happened so far. Stages keep their own state in it.
 */
public final class Exchange {

  private final String requestId;
  private final Caller caller;
  private final String model;
  private final String surface;
  private final boolean clientStreams;
  private final long startNanos;
  private final Map<String, String> headers = new LinkedHashMap<>();
  private final Map<Object, Object> attributes = new ConcurrentHashMap<>();
  private final List<String> degraded = new CopyOnWriteArrayList<>();
  private volatile ChatCall call;
  private volatile @Nullable String localReply;
  private volatile boolean wholeReply;
  private volatile String replica;
  private volatile long upstreamSentNanos;
  private volatile long firstTokenNanos;

  /**
   * @param model the client-facing model name
   * @param surface which API it came through, for metrics and logs only
   * @param clientStreams whether the client reads the reply as it is generated (a stream), rather
   *     than as one whole reply
   */
  public Exchange(
      String requestId,
      Caller caller,
      String model,
      String surface,
      boolean clientStreams,
      ChatCall call,
      long start) {
    this.requestId = requestId;
    this.caller = caller;
    this.model = model;
    this.surface = surface;
    this.clientStreams = clientStreams;
    this.call = call;
    this.startNanos = start;
  }

  public String requestId() {
    return requestId;
  }

  public Caller caller() {
    return caller;
  }

  public String model() {
    return model;
  }

  public String surface() {
    return surface;
  }

  /** Whether the client reads the reply as a stream; switching streaming off then changes it. */
  public boolean clientStreams() {
    return clientStreams;
  }

  public ChatCall call() {
    return call;
  }

  /** Replaces the upstream call (a route to another model, a lower max_tokens). */
  public void call(ChatCall next) {
    this.call = next;
  }

  /**
   * Marks the exchange degraded: the client gets {@code X-Degraded} (when the response has not
   * started yet) and {@code degraded: true} with the reasons in its finish event.
   *
   * @param reason a short token, such as {@code maintenance} or {@code fallback_model}
   */
  public void degrade(String reason) {
    if (!degraded.contains(reason)) {
      degraded.add(reason);
    }
    header("X-Degraded", String.join(", ", degraded));
  }

  public boolean degraded() {
    return !degraded.isEmpty();
  }

  /** Every degradation reason so far, comma-separated; null when the exchange is not degraded. */
  public @Nullable String degradedReason() {
    return degraded.isEmpty() ? null : String.join(", ", degraded);
  }

  /**
   * Answers with {@code text} from the gateway itself instead of the model (maintenance, a canned
   * fallback). Set during admission, it stops the stages after the one that set it.
   */
  public void answerLocally(String text) {
    this.localReply = text;
  }

  public @Nullable String localReply() {
    return localReply;
  }

  /** Asks the upstream for one whole reply instead of a stream (streaming switched off). */
  public void wholeReply(boolean value) {
    this.wholeReply = value;
  }

  public boolean wholeReply() {
    return wholeReply;
  }

  public long startNanos() {
    return startNanos;
  }

  /**
   * The prompt's size in tokens before the model service counted it: UTF-8 bytes / 3 plus a few
   * tokens per message, and the tool definitions and response schema. Generous for English, close
   * for Chinese; settled to the real count later.
   */
  public int promptTokenEstimate() {
    return TokenEstimate.prompt(call);
  }

  /** Response headers stages add (rate-limit state); written when the response starts. */
  public synchronized void header(String name, String value) {
    headers.put(name, value);
  }

  public synchronized Map<String, String> headers() {
    return Map.copyOf(headers);
  }

  @SuppressWarnings("unchecked")
  public <T> T attribute(Object key) {
    return (T) attributes.get(key);
  }

  public void attribute(Object key, Object value) {
    attributes.put(key, value);
  }

  public String replica() {
    return replica;
  }

  void replica(String value) {
    this.replica = value;
  }

  long upstreamSentNanos() {
    return upstreamSentNanos;
  }

  void upstreamSent(long nanos) {
    this.upstreamSentNanos = nanos;
  }

  long firstTokenNanos() {
    return firstTokenNanos;
  }

  void firstToken(long nanos) {
    this.firstTokenNanos = nanos;
  }
}
