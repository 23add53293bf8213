package io.selfhosted.gateway.support;

import io.selfhosted.gateway.upstream.BreakerProperties;
import io.selfhosted.gateway.upstream.UpstreamProperties;
import java.time.Duration;
import java.util.List;

/** Gateway properties for tests that build components without Spring. */
public final class TestProperties {

  private TestProperties() {}

  public static UpstreamProperties upstreams(List<String> urls, Duration healthInterval) {
    return new UpstreamProperties(
        urls,
        List.of(),
        "internal-token",
        Duration.ofSeconds(2),
        Duration.ofSeconds(1),
        healthInterval,
        Duration.ofSeconds(5),
        10_000);
  }

  /** Breakers that open after two failed calls of the last four and probe again after 300 ms. */
  public static BreakerProperties breakers() {
    return new BreakerProperties(4, 2, 50, 80, Duration.ofSeconds(5), Duration.ofMillis(300), 1);
  }
}
