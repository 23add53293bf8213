package io.selfhosted.gateway.sse;

/** Where a stream's SSE frames go: one client connection. */
public interface EventSink {

  /** Writes and flushes one frame; false when the client is gone. */
  boolean send(String frame);

  /** Ends the response cleanly. */
  void close();
}
