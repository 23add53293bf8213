package io.selfhosted.gateway.support;

import io.selfhosted.gateway.GatewayApplication;
import java.util.ArrayList;
import java.util.List;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.context.ConfigurableApplicationContext;

/**
 * Whole gateway applications started side by side on free ports, as replicas sharing one database
 * and the Redis server of GATEWAY_TEST_REDIS_URL (scripts/test-java.sh starts one).
 */
public final class GatewayReplicas {

  private GatewayReplicas() {}

  /**
   * A replica on the in-memory H2 database {@code database} in front of {@code upstream}, with
   * {@code adminKey}; {@code settings} are more {@code --name=value} arguments, which take
   * precedence over application.yml.
   */
  public static ConfigurableApplicationContext start(
      String database, FakeModelService upstream, String adminKey, String... settings) {
    List<String> args =
        new ArrayList<>(
            List.of(
                "--server.port=0",
                "--spring.main.banner-mode=off",
                "--spring.datasource.url=jdbc:h2:mem:" + database + ";DB_CLOSE_DELAY=-1",
                "--gateway.upstream.urls=" + upstream.url(),
                "--gateway.upstream.token=internal-token",
                "--gateway.auth.admin-api-key=" + adminKey,
                "--gateway.redis.url=" + System.getenv("GATEWAY_TEST_REDIS_URL")));
    args.addAll(List.of(settings));
    return new SpringApplicationBuilder(GatewayApplication.class).run(args.toArray(String[]::new));
  }

  /** The replica's URL of {@code path}. */
  public static String url(ConfigurableApplicationContext replica, String path) {
    return "http://127.0.0.1:" + replica.getEnvironment().getProperty("local.server.port") + path;
  }
}
