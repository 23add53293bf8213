package io.selfhosted.gateway.degrade;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.selfhosted.gateway.auth.Caller;
import io.selfhosted.gateway.models.ModelProfiles;
import io.selfhosted.gateway.system.ApiException;
import io.swagger.v3.oas.annotations.Operation;
import io.swagger.v3.oas.annotations.tags.Tag;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;
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

  private static final Set<String> FIELDS =
      Set.of("model", "enabled", "message", "value", "target", "reason", "expiresAt", "ttlSeconds");
  private static final int MAX_MESSAGE = 2000;
  private static final int MAX_REASON = 500;

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
      @RequestBody JsonNode body) {
    if (body == null || !body.isObject()) {
      throw ApiException.invalid(null, "request body must be a JSON object");
    }
    ObjectNode request = ((ObjectNode) body).deepCopy();
    SwitchKind which = kind(withModel(kind, request));
    contractForm(which, request);
    for (Iterator<String> names = request.fieldNames(); names.hasNext(); ) {
      String field = names.next();
      if (!FIELDS.contains(field)) {
        throw ApiException.invalid(field, "unknown field " + field + "; allowed: " + FIELDS);
      }
    }
    JsonNode enabledNode = request.get("enabled");
    if (enabledNode == null || !enabledNode.isBoolean()) {
      throw ApiException.invalid(
          "enabled", "enabled (or the contract's value: true/false) is required and a boolean");
    }
    boolean enabled = enabledNode.asBoolean();
    String model = model(which, text(request, "model", 200));
    String message = text(request, "message", MAX_MESSAGE);
    String reason = text(request, "reason", MAX_REASON);
    Integer value = null;
    String target = null;
    if (which == SwitchKind.MAX_TOKENS) {
      value = positive(request.get("value"), "value", enabled);
    } else if (request.hasNonNull("value")) {
      throw ApiException.invalid("value", "value applies to max_tokens only");
    }
    if (which == SwitchKind.MODEL_ROUTE) {
      target = text(request, "target", 200);
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
    } else if (request.hasNonNull("target")) {
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
            message,
            value,
            target,
            reason,
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
    ObjectNode named = JsonNodeFactory.instance.objectNode();
    if (model != null && !model.isBlank()) {
      named.put("model", model);
    }
    SwitchKind which = kind(withModel(kind, named));
    String checked = model(which, text(named, "model", 200));
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

  /**
   * The shared contract names a per-model switch {@code kind:model} in the path: the model moves
   * into the body (where this API takes it), and the kind is returned.
   */
  private static String withModel(String name, ObjectNode request) {
    int colon = name.indexOf(':');
    if (colon < 0) {
      return name;
    }
    if (request.hasNonNull("model")) {
      throw ApiException.invalid("model", "name the model in the path or in the body, not both");
    }
    request.put("model", name.substring(colon + 1));
    return name.substring(0, colon);
  }

  /**
   * The shared contract's form, {@code {value, expiresAt?}}: {@code value} is true/false, or the
   * switch's setting (a max_tokens cap, a route's target model, a message). Turned into this API's
   * fields when {@code enabled} is absent.
   */
  private static void contractForm(SwitchKind kind, ObjectNode request) {
    JsonNode value = request.get("value");
    if (request.has("enabled") || value == null || value.isNull()) {
      return;
    }
    if (value.isBoolean()) {
      request.set("enabled", value);
      request.remove("value");
      return;
    }
    request.put("enabled", true);
    if (value.isTextual() && kind == SwitchKind.MODEL_ROUTE && !request.has("target")) {
      request.set("target", request.remove("value"));
    } else if (value.isTextual()
        && (kind == SwitchKind.MAINTENANCE || kind == SwitchKind.MODEL_DISABLED)
        && !request.has("message")) {
      request.set("message", request.remove("value"));
    }
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

  private static @Nullable String text(ObjectNode request, String field, int max) {
    JsonNode value = request.get(field);
    if (value == null || value.isNull()) {
      return null;
    }
    if (!value.isTextual()) {
      throw ApiException.invalid(field, field + " must be a string");
    }
    String text = value.asText().strip();
    if (text.length() > max) {
      throw ApiException.invalid(field, field + " is longer than " + max + " characters");
    }
    return text.isEmpty() ? null : text;
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

  private static @Nullable Instant expiry(ObjectNode request) {
    JsonNode at = request.get("expiresAt");
    JsonNode ttl = request.get("ttlSeconds");
    boolean hasAt = at != null && !at.isNull();
    boolean hasTtl = ttl != null && !ttl.isNull();
    if (hasAt && hasTtl) {
      throw ApiException.invalid("expiresAt", "give expiresAt or ttlSeconds, not both");
    }
    if (hasTtl) {
      if (!ttl.isIntegralNumber()
          || !ttl.canConvertToLong()
          || ttl.asLong() < 1
          || ttl.asLong() > 366L * 24 * 3600) {
        throw ApiException.invalid("ttlSeconds", "ttlSeconds must be from 1 to 31622400");
      }
      return Instant.now().plusSeconds(ttl.asLong());
    }
    if (!hasAt) {
      return null;
    }
    if (!at.isTextual()) {
      throw ApiException.invalid("expiresAt", "expiresAt must be an ISO-8601 instant");
    }
    try {
      Instant parsed = Instant.parse(at.asText());
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
