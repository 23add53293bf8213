package io.selfhosted.gateway.safety;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;

/**
 * The logprobs entries of streamed text that the content check holds back. An upstream chunk's
 * entries describe that chunk's text, so they go out with the release that completes it: never
 * ahead of their text (an entry's token would show held-back text), and never at all when the text
 * is blocked. One per stream, not thread-safe, like the scanner beside it.
 */
final class HeldLogprobs {

  /** The entries of one chunk, and where its text ends in the stream (in chars). */
  private record Held(long end, List<JsonNode> entries) {}

  /**
   * What goes out with one relayed chunk.
   *
   * @param entries the entries to carry, in stream order
   * @param ownOnly true when they are exactly the chunk's own, so it needs no rewriting
   */
  record Release(List<JsonNode> entries, boolean ownOnly) {}

  private final Deque<Held> held = new ArrayDeque<>();
  private long received;
  private long released;

  /**
   * Takes the next chunk's text and entries and the length of the text released with it; answers
   * the entries whose text is now wholly released. A chunk that cannot carry entries (no choice)
   * releases none.
   */
  Release next(String text, List<JsonNode> own, int releasedChars, boolean canCarry) {
    received += text.length();
    Held mine = null;
    if (!own.isEmpty()) {
      mine = new Held(received, own);
      held.add(mine);
    }
    released += releasedChars;
    List<Held> out = new ArrayList<>();
    while (canCarry && !held.isEmpty() && held.peekFirst().end() <= released) {
      out.add(held.pollFirst());
    }
    boolean ownOnly = out.isEmpty() ? mine == null : out.size() == 1 && out.get(0) == mine;
    return new Release(entries(out), ownOnly);
  }

  /** The stream ended and every held character is released: every entry still held. */
  List<JsonNode> finish() {
    released = received;
    List<JsonNode> rest = entries(held);
    held.clear();
    return rest;
  }

  private static List<JsonNode> entries(Iterable<Held> chunks) {
    List<JsonNode> entries = new ArrayList<>();
    for (Held chunk : chunks) {
      entries.addAll(chunk.entries());
    }
    return entries;
  }
}
