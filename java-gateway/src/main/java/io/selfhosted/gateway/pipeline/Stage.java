package io.selfhosted.gateway.pipeline;

import io.selfhosted.gateway.upstream.Chunk;
import java.util.List;

/**
 * One feature of the stream lifecycle (limits, quotas, switches, content checks, usage, ...).
 * Stages run in the order that {@link Stages} declares; none knows which API the exchange came
 * through.
 */
public interface Stage {

  /**
   * Decides whether the exchange may go upstream. Throws an {@link
   * io.selfhosted.gateway.system.ApiException} to refuse it; stages admitted before are then
   * finished with {@link Outcome.Status#REJECTED}. After a stage calls {@link
   * Exchange#answerLocally}, only the stages that {@link #seesLocalReplies()} are asked.
   */
  default void admit(Exchange exchange) {}

  /**
   * Whether this stage still sees an exchange that an earlier stage answered locally (a maintenance
   * reply): accounting does, limits and checks do not.
   */
  default boolean seesLocalReplies() {
    return false;
  }

  /**
   * Sees every upstream chunk before the client does and returns what goes on, in order: the chunk,
   * rewritten ones (held-back text released, one chunk split in two), or none to hold it back.
   * Throwing {@link EndGeneration} stops the generation upstream and ends the reply with its finish
   * reason.
   */
  default List<Chunk> onChunk(Exchange exchange, Chunk chunk) {
    return List.of(chunk);
  }

  /**
   * The upstream completed: last chunks to deliver before the end (text held back), or none. May
   * throw {@link EndGeneration} like {@link #onChunk}.
   */
  default List<Chunk> beforeEnd(Exchange exchange) {
    return List.of();
  }

  /** Called exactly once for every exchange this stage admitted, however it ended. */
  default void finish(Exchange exchange, Outcome outcome) {}
}
