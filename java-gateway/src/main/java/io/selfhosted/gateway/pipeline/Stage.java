package io.selfhosted.gateway.pipeline;

import io.selfhosted.gateway.upstream.Chunk;
import org.springframework.lang.Nullable;

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
   * Sees every upstream chunk before the client does and returns what goes on: the chunk, a
   * rewritten one, or null to hold it back. Throwing {@link EndGeneration} stops the generation
   * upstream and ends the reply with its finish reason.
   */
  default @Nullable Chunk onChunk(Exchange exchange, Chunk chunk) {
    return chunk;
  }

  /**
   * The upstream completed: a last chunk to deliver before the end (text held back), or null. May
   * throw {@link EndGeneration} like {@link #onChunk}.
   */
  default @Nullable Chunk beforeEnd(Exchange exchange) {
    return null;
  }

  /** Called exactly once for every exchange this stage admitted, however it ended. */
  default void finish(Exchange exchange, Outcome outcome) {}
}
