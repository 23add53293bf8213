package io.selfhosted.gateway.degrade;

import com.fasterxml.jackson.databind.JsonNode;
import io.selfhosted.gateway.auth.Caller;
import io.selfhosted.gateway.models.ModelProfiles;
import io.selfhosted.gateway.system.ApiException;
import io.swagger.v3.oas.annotations.Operation;
import io.swagger.v3.oas.annotations.tags.Tag;
import jakarta.validation.Valid;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.List;
import java.util.Map;
import org.springframework.http.HttpStatus;
import org.springframework.lang.Nullable;
import org.springframework.security.core.annotation.AuthenticationPrincipal;
import org.springframework.web.bind.annotation.DeleteMapping;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PathVariable;
import org.springframework.web.bind.annotation.PutMapping;
import org.springframework.web.bind.annotation.RequestBody;
import org.springframework.web.bind.annotation.RequestParam;
import org.springframework.web.bind.annotation.RestController;

/** The operators' degradation switches (admin role): list, set, turn off; every change audited. */
@RestController
@Tag(name = "admin")
class SwitchController {

  private final Switches switches;
  private final ModelProfiles profiles;

  SwitchController(Switches switches, ModelProfiles profiles) {
    this.switches = switches;
    this.profiles = profiles;
  }

  @GetMapping("/admin/switches")
  @Operation(summary = "Every switch with its state; global ones that were never set show as off")
  Map<String, List<Switch>> list() {
    return Map.of("data", switches.all());
  }

  @PutMapping("/admin/switches/{kind}")
  @Operation(
      summary = "Turn a switch on or off",
      description =
          "Body: enabled (required), model (per-model switches), message, value (max_tokens),"
              + " target (model_route), reason, and expiresAt (ISO-8601) or ttlSeconds. The"
              + " shared contract's form also works: {value: true|false|setting, expiresAt?},"
              + " with a per-model switch named kind:model in the path. In effect on every"
              + " gateway replica within gateway.switches.refresh-interval.")
  Switch set(
      @AuthenticationPrincipal Caller admin,
      @PathVariable String kind,
      @Valid @RequestBody SwitchRequest body) {
    Named named = named(kind, body.model());
    SwitchKind which = named.kind();
    SwitchRequest request = body.withModel(named.model()).inContractForm(which);
    if (request.enabled() == null) {
      throw ApiException.invalid(
          "enabled", "enabled (or the contract's value: true/false) is required and a boolean");
    }
    boolean enabled = request.enabled();
    String model = model(which, request.model());
    if (request.message() != null && request.message().length() > SwitchRequest.MAX_MESSAGE) {
      // Only a message that came as the contract's value can be this long here.
      throw ApiException.invalid(
          "message", "message is longer than " + SwitchRequest.MAX_MESSAGE + " characters");
    }
    Integer value = null;
    String target = null;
    if (which == SwitchKind.MAX_TOKENS) {
      value = positive(request.value(), "value", enabled);
    } else if (request.value() != null) {
      throw ApiException.invalid("value", "value applies to max_tokens only");
    }
    if (which == SwitchKind.MODEL_ROUTE) {
      target = request.target();
      if (enabled && target == null) {
        throw ApiException.invalid("target", "target (the model that serves instead) is required");
      }
      if (target != null) {
        if (profiles.find(target).isEmpty()) {
          throw ApiException.invalid("target", "the model '" + target + "' does not exist");
        }
        if (target.equals(model)) {
          throw ApiException.invalid("target", "a model cannot be routed to itself");
        }
      }
    } else if (request.target() != null) {
      throw ApiException.invalid("target", "target applies to model_route only");
    }
    Instant expiresAt = expiry(request);
    Instant now = Instant.now();
    return switches.save(
        admin,
        new Switch(
            which,
            model,
            enabled,
            request.message(),
            value,
            target,
            request.reason(),
            enabled ? expiresAt : null,
            admin.name(),
            now));
  }

  @DeleteMapping("/admin/switches/{kind}")
  @Operation(summary = "Turn a switch off (model names the per-model one)")
  Switch turnOff(
      @AuthenticationPrincipal Caller admin,
      @PathVariable String kind,
      @RequestParam(required = false) @Nullable String model) {
    Named named = named(kind, model == null || model.isBlank() ? null : model.strip());
    SwitchKind which = named.kind();
    String checked = model(which, named.model());
    Switch before = switches.find(which, checked);
    return switches.save(
        admin,
        new Switch(
            which,
            checked,
            false,
            before.message(),
            before.value(),
            before.target(),
            null,
            null,
            admin.name(),
            Instant.now()));
  }

  /** A switch as the path names it, with the model named in the path or in the request. */
  private record Named(SwitchKind kind, @Nullable String model) {}

  /**
   * The shared contract names a per-model switch {@code kind:model} in the path, where this API
   * takes the model in the body (or, to turn it off, a query parameter).
   */
  private static Named named(String name, @Nullable String requestModel) {
    int colon = name.indexOf(':');
    if (colon < 0) {
      return new Named(kind(name), requestModel);
    }
    if (requestModel != null) {
      throw ApiException.invalid("model", "name the model in the path or in the body, not both");
    }
    String pathModel = name.substring(colon + 1).strip();
    return new Named(kind(name.substring(0, colon)), pathModel.isEmpty() ? null : pathModel);
  }

  private static SwitchKind kind(String name) {
    return SwitchKind.fromWire(name)
        .orElseThrow(
            () ->
                ApiException.notFound(
                    "switch_not_found",
                    "kind",
                    "no switch '"
                        + name
                        + "'; switches: maintenance, streaming_off, read_only, max_tokens,"
                        + " model_route, model_disabled"));
  }

  private @Nullable String model(SwitchKind kind, @Nullable String model) {
    if (kind.scope() == SwitchKind.Scope.GLOBAL && model != null) {
      throw ApiException.invalid("model", kind.wireName() + " applies to every model: no model");
    }
    if (kind.scope() == SwitchKind.Scope.MODEL && model == null) {
      throw ApiException.invalid("model", kind.wireName() + " needs the model it applies to");
    }
    if (model != null && profiles.find(model).isEmpty()) {
      throw new ApiException(
          HttpStatus.BAD_REQUEST,
          "invalid_request_error",
          "model_not_found",
          "model",
          "the model '" + model + "' does not exist");
    }
    return model;
  }

  private static @Nullable Integer positive(JsonNode value, String field, boolean required) {
    if (value == null || value.isNull()) {
      if (required) {
        throw ApiException.invalid(field, field + " (the max_tokens cap) is required");
      }
      return null;
    }
    if (!value.isIntegralNumber() || !value.canConvertToInt() || value.asInt() < 1) {
      throw ApiException.invalid(field, field + " must be a positive integer");
    }
    return value.asInt();
  }

  private static @Nullable Instant expiry(SwitchRequest request) {
    if (request.expiresAt() != null && request.ttlSeconds() != null) {
      throw ApiException.invalid("expiresAt", "give expiresAt or ttlSeconds, not both");
    }
    if (request.ttlSeconds() != null) {
      return Instant.now().plusSeconds(request.ttlSeconds());
    }
    if (request.expiresAt() == null) {
      return null;
    }
    try {
      Instant parsed = Instant.parse(request.expiresAt());
      if (!parsed.isAfter(Instant.now())) {
        throw ApiException.invalid("expiresAt", "expiresAt must be in the future");
      }
      return parsed;
    } catch (DateTimeParseException e) {
      throw ApiException.invalid(
          "expiresAt", "expiresAt must be an ISO-8601 instant such as 2026-11-26T00:00:00Z");
    }
  }
}
