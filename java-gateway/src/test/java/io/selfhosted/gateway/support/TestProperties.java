package io.selfhosted.gateway.support;

import io.selfhosted.gateway.system.GatewayProperties;
import java.time.Duration;
import java.util.List;
import org.springframework.util.unit.DataSize;

/** Gateway properties for tests that build components without Spring. */
public final class TestProperties {

  private TestProperties() {}

  public static GatewayProperties withUpstreams(List<String> upstreams, Duration healthInterval) {
    return new GatewayProperties(
        upstreams,
        "internal-token",
        "test-admin-key",
        DataSize.ofMegabytes(1),
        new GatewayProperties.Upstream(
            Duration.ofSeconds(2), Duration.ofSeconds(1), healthInterval, 2, 10_000),
        new GatewayProperties.Stream(
            Duration.ofSeconds(15), Duration.ofSeconds(30), Duration.ofMinutes(10)),
        new GatewayProperties.Cors(List.of()),
        null);
  }
}
