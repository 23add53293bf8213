package io.selfhosted.gateway.pipeline;

import io.selfhosted.gateway.upstream.Chunk;

/**
 * One feature of the stream lifecycle (limits, quotas, usage, ...). Stages run in their
 * {@code @Order}; none knows which API the exchange came through.
 */
public interface Stage {

  /**
   * Decides whether the exchange may go upstream. Throws an {@link
   * io.selfhosted.gateway.system.ApiException} to refuse it; stages admitted before are then
   * finished with {@link Outcome.Status#REJECTED}.
   */
  default void admit(Exchange exchange) {}

  /** Sees every upstream chunk before the client does. */
  default void onChunk(Exchange exchange, Chunk chunk) {}

  /** Called exactly once for every exchange this stage admitted, however it ended. */
  default void finish(Exchange exchange, Outcome outcome) {}
}
