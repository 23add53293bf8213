package io.selfhosted.gateway.degrade;

import io.selfhosted.gateway.models.ModelProfiles;
import io.selfhosted.gateway.models.ModelProperties.ModelProfile;
import io.selfhosted.gateway.pipeline.DegradationLog;
import io.selfhosted.gateway.pipeline.Exchange;
import io.selfhosted.gateway.pipeline.Stage;
import io.selfhosted.gateway.system.ApiException;
import io.selfhosted.gateway.upstream.ChatCall;
import java.util.Map;
import java.util.Optional;
import org.springframework.http.HttpStatus;
import org.springframework.stereotype.Component;

/**
 * Applies the operators' switches to every generation, before limits are counted: read-only and
 * disabled models refuse, maintenance answers with its message, a route or a max_tokens cap changes
 * the call, streaming off asks the upstream for a whole reply. Each marks the exchange degraded.
 */
@Component
public class SwitchStage implements Stage {

  private final Switches switches;
  private final SwitchProperties properties;
  private final ModelProfiles profiles;
  private final DegradationLog degradations;

  SwitchStage(
      Switches switches,
      SwitchProperties properties,
      ModelProfiles profiles,
      DegradationLog degradations) {
    this.switches = switches;
    this.properties = properties;
    this.profiles = profiles;
    this.degradations = degradations;
  }

  @Override
  public void admit(Exchange exchange) {
    String model = exchange.model();
    Optional<Switch> maintenance = switches.active(SwitchKind.MAINTENANCE, null);
    if (maintenance.isPresent()) {
      exchange.degrade("maintenance");
      degradations.record(exchange, "switch", "maintenance", null);
      exchange.answerLocally(text(maintenance.get(), properties.maintenanceMessage()));
      return;
    }
    if (switches.active(SwitchKind.READ_ONLY, null).isPresent()) {
      degradations.record(exchange, "switch", "read_only", null);
      throw refusal(
          "read_only",
          "the service is read-only for now: conversations can be read, no new answer can be"
              + " generated",
          "read_only");
    }
    Optional<Switch> disabled = switches.active(SwitchKind.MODEL_DISABLED, model);
    if (disabled.isPresent()) {
      degradations.record(exchange, "switch", "model_disabled", null);
      throw refusal(
          "model_disabled", text(disabled.get(), properties.disabledMessage()), "model_disabled");
    }
    Optional<Switch> route = switches.active(SwitchKind.MODEL_ROUTE, model);
    if (route.isPresent()) {
      Optional<ModelProfile> target = profiles.find(route.get().target());
      if (target.isPresent()) {
        exchange.call(ModelProfiles.reroute(exchange.call(), target.get()));
        exchange.degrade("model_routed");
        degradations.record(exchange, "switch", "model_routed", "to " + target.get().name());
      }
    }
    Optional<Switch> cap = switches.active(SwitchKind.MAX_TOKENS, model);
    if (cap.isPresent() && cap.get().value() != null) {
      ChatCall call = exchange.call();
      if (call.maxTokens() > cap.get().value()) {
        exchange.call(call.withMaxTokens(cap.get().value()));
        exchange.degrade("max_tokens_capped");
        degradations.record(
            exchange, "switch", "max_tokens_capped", call.maxTokens() + " -> " + cap.get().value());
      }
    }
    if (exchange.clientStreams() && switches.active(SwitchKind.STREAMING_OFF, null).isPresent()) {
      exchange.wholeReply(true);
      exchange.degrade("streaming_off");
      degradations.record(exchange, "switch", "streaming_off", null);
    }
  }

  private static String text(Switch value, String fallback) {
    return value.message() == null || value.message().isBlank() ? fallback : value.message();
  }

  private static ApiException refusal(String code, String message, String degraded) {
    return new ApiException(
            HttpStatus.SERVICE_UNAVAILABLE, "service_unavailable", code, null, message, 30L)
        .withHeaders(Map.of("X-Degraded", degraded));
  }
}
