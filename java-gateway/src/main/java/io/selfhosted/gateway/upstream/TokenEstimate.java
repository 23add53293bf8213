package io.selfhosted.gateway.upstream;

/**
 * The gateway's own token count, for text no model service has counted yet (a prompt before its
 * usage arrives) or ever will (an engine that reports no usage): UTF-8 bytes / 3, rounded up. Close
 * for Chinese, generous for English. Counted without encoding the text: it runs once per relayed
 * chunk.
 */
public final class TokenEstimate {

  /** Tokens added per chat message for its role and the template around it. */
  static final int PER_MESSAGE = 4;

  private TokenEstimate() {}

  public static long utf8Bytes(CharSequence text) {
    long bytes = 0;
    for (int i = 0; i < text.length(); i++) {
      char c = text.charAt(i);
      if (c < 0x80) {
        bytes += 1;
      } else if (c < 0x800) {
        bytes += 2;
      } else if (Character.isHighSurrogate(c)
          && i + 1 < text.length()
          && Character.isLowSurrogate(text.charAt(i + 1))) {
        bytes += 4; // a surrogate pair is one code point of four bytes
        i++;
      } else {
        bytes += 3;
      }
    }
    return bytes;
  }

  public static int fromBytes(long bytes) {
    return (int) Math.min(Integer.MAX_VALUE, (bytes + 2) / 3);
  }

  /** A prompt's estimate: its messages' text plus a few tokens per message. */
  public static int prompt(Iterable<ChatCall.Message> messages) {
    long tokens = 0;
    for (ChatCall.Message message : messages) {
      tokens += PER_MESSAGE + fromBytes(messageBytes(message));
    }
    return (int) Math.min(Integer.MAX_VALUE, tokens);
  }

  /**
   * A call's prompt estimate: its messages, and the tool definitions and response schema that the
   * chat template puts before them, counted as their JSON text.
   */
  public static int prompt(ChatCall call) {
    long tokens = prompt(call.messages());
    ChatCall.ReplyOptions options = call.options();
    if (options.tools() != null) {
      tokens += fromBytes(utf8Bytes(options.tools().toString()));
    }
    if (options.responseFormat() != null) {
      tokens += fromBytes(utf8Bytes(options.responseFormat().toString()));
    }
    return (int) Math.min(Integer.MAX_VALUE, tokens);
  }

  private static long messageBytes(ChatCall.Message message) {
    long bytes = message.content() == null ? 0 : utf8Bytes(message.content());
    if (message.toolCalls() != null) {
      bytes += utf8Bytes(message.toolCalls().toString());
    }
    return bytes;
  }
}
