package io.selfhosted.gateway.models;

import io.selfhosted.gateway.models.ModelProperties.ModelProfile;
import io.selfhosted.gateway.system.ApiException;
import io.selfhosted.gateway.upstream.ChatCall;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.springframework.stereotype.Component;

/** The models clients may name, each mapped to an upstream model with defaults and limits. */
@Component
public class ModelProfiles {

  private final Map<String, ModelProfile> byName = new LinkedHashMap<>();

  public ModelProfiles(ModelProperties properties) {
    for (ModelProfile profile : properties.profiles()) {
      if (profile.name() == null || profile.name().isBlank()) {
        throw new IllegalArgumentException("every gateway.models.profiles entry needs a name");
      }
      byName.put(profile.name(), profile);
    }
    for (ModelProfile profile : byName.values()) {
      String fallback = profile.fallbackModel();
      if (fallback != null && !fallback.isBlank() && !byName.containsKey(fallback)) {
        throw new IllegalArgumentException(
            "the fallback model '" + fallback + "' of '" + profile.name() + "' is not a profile");
      }
    }
  }

  public List<ModelProfile> all() {
    return List.copyOf(byName.values());
  }

  /** The profile for a client-facing model name; 404 in the shared envelope when unknown. */
  public ModelProfile resolve(String name) {
    ModelProfile profile = byName.get(name);
    if (profile == null) {
      throw ApiException.notFound(
          "model_not_found", "model", "the model '" + name + "' does not exist");
    }
    return profile;
  }

  public Optional<ModelProfile> find(String name) {
    return Optional.ofNullable(byName.get(name));
  }

  /** The configured fallback of a model, if it has one. */
  public Optional<ModelProfile> fallbackOf(String name) {
    ModelProfile profile = byName.get(name);
    if (profile == null || profile.fallbackModel() == null || profile.fallbackModel().isBlank()) {
      return Optional.empty();
    }
    return find(profile.fallbackModel());
  }

  /** The same call served by another model: its upstream name, within its max_tokens limit. */
  public static ChatCall reroute(ChatCall call, ModelProfile target) {
    return call.withModel(
        upstreamModel(target), Math.min(call.maxTokens(), Math.max(1, target.maxMaxTokens())));
  }

  public static String upstreamModel(ModelProfile profile) {
    return profile.upstreamModel() == null || profile.upstreamModel().isBlank()
        ? profile.name()
        : profile.upstreamModel();
  }
}
