package io.selfhosted.gateway.upstream;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.ArrayList;
import java.util.List;

/**
 * What an upstream stream has generated so far, kept so that another replica can continue the
 * answer: the token ids our model service reports on each chunk ({@code return_token_ids}), and the
 * text, for engines that continue from text.
 */
final class PartialAnswer {

  private final List<Integer> tokenIds = new ArrayList<>();
  private final StringBuilder text = new StringBuilder();
  private int outputChunks;
  private boolean idsComplete = true;
  private boolean toolCalls;

  /**
   * Takes in one chunk of the answer and strips the token ids from it (the client did not ask for
   * them); returns whether it carried any.
   */
  boolean add(Chunk chunk) {
    boolean carried = false;
    if (chunk.raw().path("choices").path(0) instanceof ObjectNode choice) {
      JsonNode ids = choice.remove("token_ids");
      if (ids != null && ids.isArray()) {
        ids.forEach(id -> tokenIds.add(id.asInt()));
        carried = !ids.isEmpty();
      } else if (chunk.hasOutput()) {
        idsComplete = false; // an upstream that does not report ids: continued from text only
      }
    }
    chunk.raw().remove("prompt_token_ids");
    if (chunk.hasOutput()) {
      outputChunks++;
      text.append(chunk.text());
      toolCalls |= !chunk.toolCalls().isEmpty();
    }
    return carried;
  }

  /** The ids of every token so far, when every chunk with output reported them. */
  boolean hasTokenIds() {
    return idsComplete;
  }

  List<Integer> tokenIds() {
    return tokenIds;
  }

  String text() {
    return text.toString();
  }

  /** Whether part of the answer went to tool calls (which text continuation cannot carry). */
  boolean hasToolCalls() {
    return toolCalls;
  }

  /** How many tokens the answer has so far: exact with ids, else one per chunk with output. */
  int tokens() {
    return idsComplete ? tokenIds.size() : outputChunks;
  }
}
