package io.selfhosted.gateway.upstream;

/**
 * Token counts for a reply whose upstream reported no usage, counted by the gateway itself: the
 * prompt by {@link TokenEstimate#prompt}, the completion as the larger of the output chunks
 * received (engines stream about one token per chunk) and the size estimate of their text: the
 * content and the tool calls' names and arguments of every choice.
 */
final class UsageEstimate {

  private final ChatCall call;
  private int contentChunks;
  private long contentBytes;

  UsageEstimate(ChatCall call) {
    this.call = call;
  }

  void add(Chunk chunk) {
    if (chunk.hasOutput()) {
      contentChunks++;
      contentBytes += chunk.outputBytes();
    }
  }

  Chunk.Usage usage() {
    return new Chunk.Usage(
        TokenEstimate.prompt(call),
        Math.max(contentChunks, TokenEstimate.fromBytes(contentBytes)),
        true);
  }
}
