package io.selfhosted.gateway.upstream;

/**
 * Callbacks of one logical upstream stream, failover included. Exactly one of {@link #onComplete}
 * and {@link #onError} ends it; none is called after the caller cancelled. Callbacks never overlap.
 */
public interface UpstreamListener {

  /** A replica accepted the request (200 text/event-stream); called at most once. */
  default void onOpen(String replica) {}

  /** A replica failed before the first token and the call moves on to another one. */
  default void onFailover(String failedReplica, UpstreamError error) {}

  /**
   * A replica failed after the first token and another one continues the answer; its chunks follow
   * in the same stream.
   */
  default void onContinued(String failedReplica, UpstreamError error) {}

  /** One {@code chat.completion.chunk} in arrival order. */
  void onChunk(Chunk chunk);

  /** The upstream sent {@code [DONE]}. */
  void onComplete();

  /** The stream failed; {@code afterFirstChunk} tells whether any chunk had been delivered. */
  void onError(UpstreamError error, boolean afterFirstChunk);
}
