package io.selfhosted.gateway.usage;

import io.selfhosted.gateway.auth.Caller;
import io.selfhosted.gateway.system.ApiException;
import io.selfhosted.gateway.system.QueryParams;
import io.swagger.v3.oas.annotations.Operation;
import io.swagger.v3.oas.annotations.tags.Tag;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.springframework.security.core.annotation.AuthenticationPrincipal;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.RequestParam;
import org.springframework.web.bind.annotation.RestController;

/** Usage records and totals: every key's for admins, one's own for any caller. */
@RestController
@Tag(name = "usage")
public class UsageController {

  private final UsageRepository repository;

  public UsageController(UsageRepository repository) {
    this.repository = repository;
  }

  @GetMapping("/admin/usage")
  @Operation(
      summary = "Usage over a time window, filtered by key and model",
      description =
          "groupBy=key|model gives totals per key or per model; the records themselves are"
              + " newest first, at most `limit` of them")
  public Map<String, Object> adminUsage(
      @RequestParam(required = false) String keyId,
      @RequestParam(required = false) String model,
      @RequestParam(required = false) String from,
      @RequestParam(required = false) String to,
      @RequestParam(required = false) String groupBy,
      @RequestParam(required = false) String limit) {
    return usage(keyId, model, from, to, groupBy, limit);
  }

  @GetMapping("/api/usage")
  @Operation(summary = "The calling key's own usage over a time window")
  public Map<String, Object> myUsage(
      @AuthenticationPrincipal Caller caller,
      @RequestParam(required = false) String model,
      @RequestParam(required = false) String from,
      @RequestParam(required = false) String to,
      @RequestParam(required = false) String groupBy,
      @RequestParam(required = false) String limit) {
    if ("key".equals(groupBy)) {
      throw ApiException.invalid("groupBy", "groupBy must be model here");
    }
    return usage(caller.keyId(), model, from, to, groupBy, limit);
  }

  private Map<String, Object> usage(
      String keyId, String model, String from, String to, String groupBy, String limit) {
    Instant start = QueryParams.instant("from", from);
    Instant end = QueryParams.instant("to", to);
    if (start != null && end != null && !start.isBefore(end)) {
      throw ApiException.invalid("to", "to must come after from");
    }
    String column =
        groupBy == null || groupBy.isBlank()
            ? null
            : switch (groupBy) {
              case "key" -> "key_id";
              case "model" -> "model";
              default -> throw ApiException.invalid("groupBy", "groupBy must be key or model");
            };
    UsageRepository.Filter filter = new UsageRepository.Filter(keyId, model, start, end);
    Map<String, Object> body = new LinkedHashMap<>();
    body.put("from", start);
    body.put("to", end);
    body.put("total", repository.totals(filter, null).get(0));
    if (column != null) {
      List<UsageRepository.Totals> groups = repository.totals(filter, column);
      body.put("groupBy", groupBy);
      body.put("groups", groups);
    }
    body.put("data", repository.find(filter, QueryParams.integer("limit", limit, 100, 1, 1000)));
    return body;
  }
}
