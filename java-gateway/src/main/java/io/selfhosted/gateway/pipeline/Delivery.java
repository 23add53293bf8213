package io.selfhosted.gateway.pipeline;

import io.selfhosted.gateway.upstream.Chunk;

/** What one entry point does with a generation: the thin adapter between pipeline and client. */
public interface Delivery {

  /** A replica accepted the request. */
  default void open(Exchange exchange) {}

  /** One upstream chunk, after every stage saw it. */
  void chunk(Exchange exchange, Chunk chunk);

  /** The generation ended; called exactly once, after every stage finished. */
  void end(Exchange exchange, Outcome outcome);
}
