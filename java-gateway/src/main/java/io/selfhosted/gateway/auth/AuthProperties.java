package io.selfhosted.gateway.auth;

import java.time.Duration;
import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.boot.context.properties.bind.DefaultValue;

/**
 * Authentication settings.
 *
 * @param adminApiKey ADMIN_API_KEY: while set, an admin key with this value exists
 * @param keyCacheTtl how long a looked-up key is trusted before it is read again; a revocation on
 *     another gateway replica takes effect within this time (at once on the replica that revoked)
 * @param sessionTtl how long a browser session lives
 * @param openMetrics serve /actuator/prometheus without a key, for a scraper on a private network
 *     (pair it with management.server.port so that only that network reaches it)
 * @param apiDocs who may read the OpenAPI document (GATEWAY_API_DOCS)
 */
@ConfigurationProperties("gateway.auth")
public record AuthProperties(
    @DefaultValue("") String adminApiKey,
    @DefaultValue("5s") Duration keyCacheTtl,
    @DefaultValue("12h") Duration sessionTtl,
    @DefaultValue("false") boolean openMetrics,
    @DefaultValue("authenticated") ApiDocs apiDocs) {

  /**
   * Who may read {@code /v3/api-docs}. The document names every endpoint, the admin API's included,
   * and the configured models: by default only callers with a key see it.
   */
  public enum ApiDocs {
    /** Anyone, without a key. */
    PUBLIC,
    /** Any valid key or browser session. */
    AUTHENTICATED,
    /** Admin keys only. */
    ADMIN
  }
}
