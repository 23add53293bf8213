package io.selfhosted.gateway.system;

import java.time.Duration;
import java.util.List;
import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.boot.context.properties.bind.DefaultValue;
import org.springframework.util.unit.DataSize;

/** Everything the gateway reads from configuration, bound once at start-up. */
@ConfigurationProperties("gateway")
public record GatewayProperties(
    @DefaultValue("http://127.0.0.1:8000") List<String> upstreams,
    @DefaultValue("") String modelServiceToken,
    @DefaultValue("") String adminApiKey,
    @DefaultValue("1MB") DataSize maxBodySize,
    @DefaultValue Upstream upstream,
    @DefaultValue Stream stream,
    @DefaultValue Cors cors,
    List<ModelProfile> profiles) {

  public GatewayProperties {
    profiles =
        profiles == null || profiles.isEmpty()
            ? List.of(
                new ModelProfile(
                    "demo-model",
                    "demo-model",
                    "You are a helpful AI assistant.",
                    256,
                    1024,
                    0.7,
                    0.9))
            : List.copyOf(profiles);
  }

  /** Upstream client and pool settings. */
  public record Upstream(
      @DefaultValue("5s") Duration connectTimeout,
      @DefaultValue("30s") Duration readTimeout,
      @DefaultValue("5s") Duration healthInterval,
      @DefaultValue("3") int ejectAfterFailures,
      @DefaultValue("10000") int maxConcurrentStreams) {}

  /** Product stream settings: heartbeats, resume grace period, buffer retention. */
  public record Stream(
      @DefaultValue("15s") Duration heartbeatInterval,
      @DefaultValue("30s") Duration resumeGrace,
      @DefaultValue("10m") Duration retention) {}

  /** Cross-origin callers allowed; empty means same-origin only. */
  public record Cors(@DefaultValue List<String> allowedOrigins) {}

  /** A model as clients name it, mapped to an upstream model with defaults and limits. */
  public record ModelProfile(
      String name,
      String upstreamModel,
      String systemPrompt,
      @DefaultValue("256") int defaultMaxTokens,
      @DefaultValue("1024") int maxMaxTokens,
      @DefaultValue("0.7") double defaultTemperature,
      @DefaultValue("0.9") double defaultTopP) {}
}
