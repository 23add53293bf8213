package io.selfhosted.gateway.upstream;

/**
 * Token counts for a reply whose upstream reported no usage, counted by the gateway itself: the
 * prompt by {@link TokenEstimate#prompt}, the completion as the larger of the content chunks
 * received (engines stream about one token per chunk) and the size estimate of their text.
 */
final class UsageEstimate {

  private final ChatCall call;
  private int contentChunks;
  private long contentBytes;

  UsageEstimate(ChatCall call) {
    this.call = call;
  }

  void add(String text) {
    if (!text.isEmpty()) {
      contentChunks++;
      contentBytes += TokenEstimate.utf8Bytes(text);
    }
  }

  Chunk.Usage usage() {
    return new Chunk.Usage(
        TokenEstimate.prompt(call.messages()),
        Math.max(contentChunks, TokenEstimate.fromBytes(contentBytes)),
        true);
  }
}
