package io.selfhosted.gateway.upstream;

import java.util.Arrays;
import java.util.Locale;
import java.util.stream.Collectors;

/**
 * The kinds of OpenAI-compatible server the gateway knows how to probe. Only our own model service
 * takes the protocol's extensions (such as {@code ignore_eos}) and serves the {@code /metrics} that
 * load shedding reads; every other engine gets the standard chat-completions fields only.
 */
public enum UpstreamEngine {
  OURS("ours", "/ready", true),
  VLLM("vllm", "/health", false),
  SGLANG("sglang", "/health", false),
  TGI("tgi", "/health", false),
  TRANSFORMERS("transformers", "/health", false),
  OPENAI("openai", "/v1/models", false);

  private final String wireName;
  private final String readyPath;
  private final boolean ours;

  UpstreamEngine(String wireName, String readyPath, boolean ours) {
    this.wireName = wireName;
    this.readyPath = readyPath;
    this.ours = ours;
  }

  public String wireName() {
    return wireName;
  }

  /** The path that answers 2xx once the engine can serve. */
  public String defaultReadyPath() {
    return readyPath;
  }

  /** Whether the engine serves our {@code /metrics} (queue depth for load shedding). */
  public boolean servesLoadMetrics() {
    return ours;
  }

  /** Whether the engine takes our extensions of the chat-completions request. */
  public boolean takesExtensions() {
    return ours;
  }

  /** The engine named in configuration; {@code transformers-serve} is an alias. */
  public static UpstreamEngine of(String name) {
    String key = name.trim().toLowerCase(Locale.ROOT);
    if (key.equals("transformers-serve")) {
      return TRANSFORMERS;
    }
    for (UpstreamEngine engine : values()) {
      if (engine.wireName.equals(key)) {
        return engine;
      }
    }
    throw new IllegalArgumentException(
        "unknown upstream engine '"
            + name
            + "' (one of: "
            + Arrays.stream(values())
                .map(UpstreamEngine::wireName)
                .collect(Collectors.joining(", "))
            + ")");
  }
}
