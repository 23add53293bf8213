package io.selfhosted.gateway.pipeline;

import io.selfhosted.gateway.models.ModelProfiles;
import io.selfhosted.gateway.models.ModelProperties.ModelProfile;
import io.selfhosted.gateway.upstream.ChatCall;
import java.util.HashSet;
import java.util.Optional;
import java.util.Set;
import org.springframework.lang.Nullable;
import org.springframework.stereotype.Component;

/**
 * The fallback chain of an unavailable model: its configured fallback model (and that one's, and so
 * on), then a canned reply. Other replicas of the same model are tried before, by failover.
 */
@Component
public class Fallbacks {

  private final ModelProfiles profiles;
  private final FallbackProperties properties;

  public Fallbacks(ModelProfiles profiles, FallbackProperties properties) {
    this.profiles = profiles;
    this.properties = properties;
  }

  /**
   * The next model to try for {@code exchange}: the first in its chain whose upstream model was not
   * tried yet.
   */
  public Optional<Fallback> next(Exchange exchange, Set<String> triedUpstreamModels) {
    Set<String> seen = new HashSet<>();
    String name = exchange.model();
    while (seen.add(name)) {
      Optional<ModelProfile> fallback = profiles.fallbackOf(name);
      if (fallback.isEmpty()) {
        return Optional.empty();
      }
      ModelProfile profile = fallback.get();
      if (!triedUpstreamModels.contains(ModelProfiles.upstreamModel(profile))) {
        return Optional.of(
            new Fallback(profile.name(), ModelProfiles.reroute(exchange.call(), profile)));
      }
      name = profile.name();
    }
    return Optional.empty();
  }

  /** The canned reply at the end of the chain, or null when there is none. */
  public @Nullable String reply() {
    return properties.reply() == null || properties.reply().isBlank() ? null : properties.reply();
  }

  /** A fallback model and the call that asks it. */
  public record Fallback(String model, ChatCall call) {}
}
