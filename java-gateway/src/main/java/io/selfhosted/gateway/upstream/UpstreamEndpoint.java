package io.selfhosted.gateway.upstream;

import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import okhttp3.HttpUrl;
import org.springframework.lang.Nullable;

/**
 * One configured upstream: a base URL whose host may stand for several replicas, the engine behind
 * it and how to talk to it.
 *
 * @param url the server root (chat completions are at {@code /v1/chat/completions} below it)
 * @param engine what serves it, which decides the defaults below
 * @param readyPath the readiness probe, answered 2xx once the engine can serve
 * @param model the name the upstream knows its model by; null: the model profile's upstream-model
 * @param token the bearer token for this upstream; null: the shared MODEL_SERVICE_TOKEN
 * @param resolve whether the host name is resolved to one replica per address
 */
public record UpstreamEndpoint(
    HttpUrl url,
    UpstreamEngine engine,
    String readyPath,
    @Nullable String model,
    @Nullable String token,
    boolean resolve) {

  private static final Set<String> OPTIONS =
      Set.of("engine", "ready-path", "model", "token", "resolve");

  /** The URL as it may be logged and shown: no credentials, no settings. */
  public String displayUrl() {
    String text = url.newBuilder().username("").password("").build().toString();
    return text.endsWith("/") ? text.substring(0, text.length() - 1) : text;
  }

  /**
   * An entry of GATEWAY_UPSTREAMS: a plain URL is our own model service; settings follow a {@code
   * #}, e.g. {@code http://vllm:8000#engine=vllm&model=Qwen/Qwen2.5-72B-Instruct}.
   */
  public static UpstreamEndpoint parse(String entry) {
    String trimmed = entry.trim();
    int hash = trimmed.indexOf('#');
    String url = hash < 0 ? trimmed : trimmed.substring(0, hash);
    Map<String, String> options = new LinkedHashMap<>();
    if (hash >= 0) {
      for (String pair : trimmed.substring(hash + 1).split("&")) {
        if (pair.isBlank()) {
          continue;
        }
        int eq = pair.indexOf('=');
        if (eq <= 0) {
          throw invalid(url, "the setting '" + pair + "' is not name=value");
        }
        String name = pair.substring(0, eq).trim().toLowerCase(Locale.ROOT);
        if (!OPTIONS.contains(name)) {
          throw invalid(url, "unknown setting '" + name + "' (one of " + OPTIONS + ")");
        }
        options.put(name, URLDecoder.decode(pair.substring(eq + 1), StandardCharsets.UTF_8));
      }
    }
    String resolve = options.get("resolve");
    if (resolve != null && !resolve.equals("true") && !resolve.equals("false")) {
      throw invalid(url, "resolve must be true or false, not '" + resolve + "'");
    }
    return of(
        url,
        options.get("engine"),
        options.get("ready-path"),
        options.get("model"),
        options.get("token"),
        resolve == null ? null : Boolean.valueOf(resolve));
  }

  /** An endpoint from its settings, each of which may be null for the engine's default. */
  public static UpstreamEndpoint of(
      @Nullable String url,
      @Nullable String engine,
      @Nullable String readyPath,
      @Nullable String model,
      @Nullable String token,
      @Nullable Boolean resolve) {
    if (url == null || url.isBlank()) {
      throw new IllegalArgumentException("an upstream needs a url");
    }
    HttpUrl parsed = HttpUrl.parse(url.trim());
    if (parsed == null) {
      throw invalid(url, "not an http(s) URL");
    }
    if (parsed.query() != null) {
      throw invalid(url, "a base URL takes no query; settings go after '#'");
    }
    UpstreamEngine kind;
    try {
      kind = engine == null || engine.isBlank() ? UpstreamEngine.OURS : UpstreamEngine.of(engine);
    } catch (IllegalArgumentException e) {
      throw invalid(url, e.getMessage());
    }
    String path =
        readyPath == null || readyPath.isBlank() ? kind.defaultReadyPath() : readyPath.trim();
    if (!path.startsWith("/") || path.contains("?") || path.contains("#")) {
      throw invalid(url, "ready-path must be a path starting with '/', not '" + path + "'");
    }
    return new UpstreamEndpoint(
        parsed,
        kind,
        path,
        model == null || model.isBlank() ? null : model.trim(),
        token == null || token.isBlank() ? null : token,
        resolve == null || resolve);
  }

  /** Without the token, so that an endpoint in a log line or an error never shows it. */
  @Override
  public String toString() {
    return "UpstreamEndpoint[url="
        + displayUrl()
        + ", engine="
        + engine
        + ", readyPath="
        + readyPath
        + ", model="
        + model
        + ", token="
        + (token == null ? "(shared)" : "(set)")
        + ", resolve="
        + resolve
        + "]";
  }

  /** Whether the host names a set of replicas to look up, rather than one address. */
  boolean discovers() {
    String host = url.host();
    return resolve
        && !host.equalsIgnoreCase("localhost")
        && !host.contains(":") // IPv6 literal
        && !host.matches("[0-9.]+");
  }

  private static IllegalArgumentException invalid(String url, String why) {
    // Never echo settings: they may hold a token.
    HttpUrl parsed = HttpUrl.parse(url.trim());
    String shown = parsed == null ? "(unreadable URL)" : parsed.host() + ":" + parsed.port();
    return new IllegalArgumentException("invalid upstream " + shown + ": " + why);
  }
}
