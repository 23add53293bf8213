package io.selfhosted.gateway.models;

import java.util.List;
import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.boot.context.properties.bind.DefaultValue;
import org.springframework.lang.Nullable;

/** The models clients may name, each mapped to an upstream model with defaults and limits. */
@ConfigurationProperties("gateway.models")
public record ModelProperties(List<ModelProfile> profiles) {

  public ModelProperties {
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
                    0.9,
                    null,
                    true,
                    true))
            : List.copyOf(profiles);
  }

  /**
   * A model as clients name it, mapped to an upstream model with defaults and limits.
   *
   * @param fallbackModel the profile that answers while this model is unavailable (its breaker is
   *     open or no replica can serve it); none when null
   * @param tools whether the model can call tools; when false, a request with {@code tools} or
   *     {@code tool_choice} gets 400 before anything goes upstream
   * @param structuredOutputs whether the model can be held to JSON; when false, a request with
   *     {@code response_format} {@code json_object} or {@code json_schema} gets 400
   */
  public record ModelProfile(
      String name,
      String upstreamModel,
      String systemPrompt,
      @DefaultValue("256") int defaultMaxTokens,
      @DefaultValue("1024") int maxMaxTokens,
      @DefaultValue("0.7") double defaultTemperature,
      @DefaultValue("0.9") double defaultTopP,
      @Nullable String fallbackModel,
      @DefaultValue("true") boolean tools,
      @DefaultValue("true") boolean structuredOutputs) {}
}
