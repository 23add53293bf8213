package io.selfhosted.gateway.stream;

import io.selfhosted.gateway.sse.EventSink;

/**
 * The reading side of one answer's product stream, wherever its events live: what a browser
 * attaches to, on any gateway replica.
 */
public interface ResumableStream {

  /** Where a resume request points. */
  enum Resume {
    OK,
    NOTHING_LEFT,
    BEYOND_STREAM
  }

  String messageId();

  String conversationId();

  /** The API key whose conversation this is: only it may read or cancel the stream. */
  String ownerKeyId();

  Resume checkResume(long lastEventId);

  /**
   * Sends every event after {@code lastEventId}, then keeps the sink attached for live events (or
   * closes it once the stream has ended).
   */
  void attach(long lastEventId, EventSink sink);

  void detach(EventSink sink);
}
