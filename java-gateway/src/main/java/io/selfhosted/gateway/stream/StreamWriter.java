package io.selfhosted.gateway.stream;

/** The generating side of one answer's product stream: used only by the gateway that owns it. */
public interface StreamWriter {

  String messageId();

  String conversationId();

  /** The text appended so far. */
  String text();

  /** Appends a text delta as a {@code message} event; ignored once the stream is ending. */
  void appendText(String delta, String data);

  /** Claims the end of the stream; only the first caller gets true. */
  boolean beginEnd();

  /** Publishes the final event ({@code finish} or {@code error}) and ends every reader. */
  void end(String name, String data);

  /** The reading side of this stream, for a client attached on this gateway. */
  ResumableStream reader();

  /** Starts the grace period if nobody reads the stream; its end cancels the generation. */
  void scheduleGraceIfUnattended();
}
