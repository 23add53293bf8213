package io.selfhosted.gateway;

import java.security.Security;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.actuate.autoconfigure.data.redis.RedisHealthContributorAutoConfiguration;
import org.springframework.boot.actuate.autoconfigure.data.redis.RedisReactiveHealthContributorAutoConfiguration;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.boot.autoconfigure.data.redis.RedisAutoConfiguration;
import org.springframework.boot.autoconfigure.data.redis.RedisReactiveAutoConfiguration;
import org.springframework.boot.autoconfigure.data.redis.RedisRepositoriesAutoConfiguration;
import org.springframework.boot.autoconfigure.security.servlet.UserDetailsServiceAutoConfiguration;
import org.springframework.boot.autoconfigure.session.SessionAutoConfiguration;
import org.springframework.boot.context.properties.ConfigurationPropertiesScan;
import org.springframework.scheduling.annotation.EnableScheduling;

/**
 * The gateway between business apps, browsers and the Python model services.
 *
 * <p>Spring Boot's default user is left out: callers authenticate with API keys only
 * (auth/SecurityConfig), and the user's generated password, printed at every start, would work
 * nowhere while looking like a credential. Boot's Redis and Spring Session auto-configurations are
 * off: the gateway wires Redis itself from GATEWAY_REDIS_URL ({@code redis/}), so that nothing
 * reaches for localhost:6379 when it is unset and a Redis outage does not take /actuator/health
 * down (a request that needs Redis says so itself); sessions are wired in {@code
 * auth/SessionConfig}.
 */
@SpringBootApplication(
    exclude = {
      UserDetailsServiceAutoConfiguration.class,
      RedisAutoConfiguration.class,
      RedisReactiveAutoConfiguration.class,
      RedisRepositoriesAutoConfiguration.class,
      RedisHealthContributorAutoConfiguration.class,
      RedisReactiveHealthContributorAutoConfiguration.class,
      SessionAutoConfiguration.class
    })
@ConfigurationPropertiesScan
@EnableScheduling
public class GatewayApplication {

  /**
   * How long the JVM keeps a successful DNS answer. Its default (30 s) would hide replicas that
   * join or leave behind an upstream host name for longer than the gateway's re-resolve interval;
   * an operator's own {@code networkaddress.cache.ttl} wins.
   */
  static final String DNS_CACHE_SECONDS = "5";

  public static void main(String[] args) {
    if (Security.getProperty("networkaddress.cache.ttl") == null
        && System.getProperty("sun.net.inetaddr.ttl") == null) {
      Security.setProperty("networkaddress.cache.ttl", DNS_CACHE_SECONDS);
    }
    SpringApplication.run(GatewayApplication.class, args);
  }
}
