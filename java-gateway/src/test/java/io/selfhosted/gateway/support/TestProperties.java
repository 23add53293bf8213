package io.selfhosted.gateway.support;

import io.selfhosted.gateway.upstream.UpstreamProperties;
import java.time.Duration;
import java.util.List;

/** Gateway properties for tests that build components without Spring. */
public final class TestProperties {

  private TestProperties() {}

  public static UpstreamProperties upstreams(List<String> urls, Duration healthInterval) {
    return new UpstreamProperties(
        urls,
        "internal-token",
        Duration.ofSeconds(2),
        Duration.ofSeconds(1),
        healthInterval,
        2,
        10_000);
  }
}
