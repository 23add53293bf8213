package io.selfhosted.gateway.upstream;

import java.nio.charset.StandardCharsets;

/**
 * Token counts for a reply whose upstream reported no usage, counted by the gateway itself. The
 * prompt is estimated from its size (UTF-8 bytes / 3 plus 4 per message: close for Chinese,
 * generous for English); the completion as the larger of the content chunks received (engines
 * stream about one token per chunk) and the same size estimate of the text.
 */
final class UsageEstimate {

  private final int promptTokens;
  private int contentChunks;
  private long contentBytes;

  UsageEstimate(ChatCall call) {
    int tokens = 0;
    for (ChatCall.Message message : call.messages()) {
      tokens += 4 + bytesToTokens(message.content().getBytes(StandardCharsets.UTF_8).length);
    }
    this.promptTokens = tokens;
  }

  void add(String text) {
    if (!text.isEmpty()) {
      contentChunks++;
      contentBytes += text.getBytes(StandardCharsets.UTF_8).length;
    }
  }

  Chunk.Usage usage() {
    return new Chunk.Usage(
        promptTokens, (int) Math.max(contentChunks, bytesToTokens(contentBytes)), true);
  }

  private static int bytesToTokens(long bytes) {
    return (int) ((bytes + 2) / 3);
  }
}
