package io.selfhosted.gateway.upstream;

import java.time.Duration;
import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.boot.context.properties.bind.DefaultValue;

/**
 * Continuation failover: a stream whose replica fails after the first token is continued on another
 * replica and spliced into the same stream.
 *
 * @param enabled false: such a stream ends with the clean {@code generation_interrupted} error, as
 *     before
 * @param stallTimeout the longest a replica may go without sending a chunk once the answer has
 *     started, before it counts as failed and the answer moves on
 */
@ConfigurationProperties("gateway.upstream.continuation")
public record ContinuationProperties(
    @DefaultValue("true") boolean enabled, @DefaultValue("15s") Duration stallTimeout) {

  /** The shipped settings. */
  public static final ContinuationProperties DEFAULTS =
      new ContinuationProperties(true, Duration.ofSeconds(15));

  public ContinuationProperties {
    if (stallTimeout == null || stallTimeout.isNegative() || stallTimeout.isZero()) {
      throw new IllegalArgumentException(
          "gateway.upstream.continuation.stall-timeout must be a positive duration");
    }
  }
}
