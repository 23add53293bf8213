package io.selfhosted.gateway.chat;

import io.selfhosted.gateway.chat.ModelProperties.ModelProfile;
import io.selfhosted.gateway.system.ApiException;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.springframework.stereotype.Component;

/** The models clients may name, each mapped to an upstream model with defaults and limits. */
@Component
public class ModelProfiles {

  private final Map<String, ModelProfile> byName = new LinkedHashMap<>();

  public ModelProfiles(ModelProperties properties) {
    for (ModelProfile profile : properties.profiles()) {
      if (profile.name() == null || profile.name().isBlank()) {
        throw new IllegalArgumentException("every gateway.profiles entry needs a name");
      }
      byName.put(profile.name(), profile);
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

  static String upstreamModel(ModelProfile profile) {
    return profile.upstreamModel() == null || profile.upstreamModel().isBlank()
        ? profile.name()
        : profile.upstreamModel();
  }
}
