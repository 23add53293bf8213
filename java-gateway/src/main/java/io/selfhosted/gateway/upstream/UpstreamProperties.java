package io.selfhosted.gateway.upstream;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.boot.context.properties.bind.DefaultValue;
import org.springframework.lang.Nullable;

/**
 * The model-service replicas and how the gateway talks to them.
 *
 * @param urls GATEWAY_UPSTREAMS: base URLs, each optionally with settings after '#' (see {@link
 *     UpstreamEndpoint#parse})
 * @param endpoints the same as structured settings; both lists are used
 * @param resolveInterval how often host names are looked up again for replicas that came or went
 */
@ConfigurationProperties("gateway.upstream")
public record UpstreamProperties(
    @DefaultValue("") List<String> urls,
    @Nullable List<Endpoint> endpoints,
    @DefaultValue("") String token,
    @DefaultValue("5s") Duration connectTimeout,
    @DefaultValue("30s") Duration readTimeout,
    @DefaultValue("5s") Duration healthInterval,
    @DefaultValue("5s") Duration resolveInterval,
    @DefaultValue("10000") int maxConcurrentStreams) {

  /** The local model service when nothing is configured. */
  static final String DEFAULT_URL = "http://127.0.0.1:8000";

  public UpstreamProperties {
    urls = urls == null ? List.of() : urls.stream().filter(u -> !u.isBlank()).toList();
    endpoints = endpoints == null ? List.of() : List.copyOf(endpoints);
    requirePositive("connect-timeout", connectTimeout);
    requirePositive("read-timeout", readTimeout);
    requirePositive("health-interval", healthInterval);
    requirePositive("resolve-interval", resolveInterval);
    if (maxConcurrentStreams < 1) {
      throw new IllegalArgumentException(
          "gateway.upstream.max-concurrent-streams must be at least 1");
    }
    // Parsed here as well, so that a wrong upstream stops start-up with the binding's clear report.
    parse(urls, endpoints);
  }

  /** The upstreams as configured, validated; the local model service when none is. */
  public List<UpstreamEndpoint> parsedEndpoints() {
    return parse(urls, endpoints);
  }

  private static List<UpstreamEndpoint> parse(List<String> urls, List<Endpoint> endpoints) {
    List<UpstreamEndpoint> parsed = new ArrayList<>();
    for (String url : urls) {
      parsed.add(UpstreamEndpoint.parse(url));
    }
    for (int i = 0; i < endpoints.size(); i++) {
      Endpoint e = endpoints.get(i);
      try {
        parsed.add(
            UpstreamEndpoint.of(
                e.url(), e.engine(), e.readyPath(), e.model(), e.token(), e.resolve()));
      } catch (IllegalArgumentException invalid) {
        throw new IllegalArgumentException(
            "gateway.upstream.endpoints[" + i + "]: " + invalid.getMessage(), invalid);
      }
    }
    if (parsed.isEmpty()) {
      parsed.add(UpstreamEndpoint.parse(DEFAULT_URL));
    }
    return List.copyOf(parsed);
  }

  private static void requirePositive(String name, Duration value) {
    if (value == null || value.isNegative() || value.isZero()) {
      throw new IllegalArgumentException(
          "gateway.upstream." + name + " must be a positive duration");
    }
  }

  /**
   * One upstream as structured settings; every field but {@code url} defaults from the engine.
   *
   * @param engine ours (default), vllm, sglang, tgi, transformers, openai
   * @param readyPath the readiness probe path; the engine's when unset
   * @param model the upstream's own model name; the model profile's upstream-model when unset
   * @param token the bearer token for this upstream; MODEL_SERVICE_TOKEN when unset
   * @param resolve look the host name up for one replica per address (default true)
   */
  public record Endpoint(
      String url,
      @Nullable String engine,
      @Nullable String readyPath,
      @Nullable String model,
      @Nullable String token,
      @Nullable Boolean resolve) {}
}
