package io.selfhosted.gateway.safety;

import java.time.Duration;
import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.boot.context.properties.bind.DefaultValue;

/**
 * Content safety settings.
 *
 * @param rulesFile the YAML rules file (see content-rules.example.yml); empty means no rules
 * @param reloadInterval how often the file's modification time is checked; zero turns that off
 * @param moderation the optional external moderation service
 */
@ConfigurationProperties("gateway.content")
public record ContentProperties(
    @DefaultValue("") String rulesFile,
    @DefaultValue("2s") Duration reloadInterval,
    @DefaultValue Moderation moderation) {

  /**
   * An OpenAI-style moderation endpoint.
   *
   * @param url the full endpoint URL, such as {@code http://127.0.0.1:9000/v1/moderations}; empty
   *     turns moderation off
   * @param token sent as a bearer token when set
   * @param timeout the most one check may take, connection included
   * @param failOpen when the service fails or times out: true lets the text pass, false refuses it
   */
  public record Moderation(
      @DefaultValue("") String url,
      @DefaultValue("") String token,
      @DefaultValue("2s") Duration timeout,
      @DefaultValue("true") boolean failOpen) {}
}
