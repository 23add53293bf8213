package io.selfhosted.gateway.audit;

import io.selfhosted.gateway.system.QueryParams;
import io.swagger.v3.oas.annotations.Operation;
import io.swagger.v3.oas.annotations.tags.Tag;
import java.util.List;
import java.util.Map;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.RequestParam;
import org.springframework.web.bind.annotation.RestController;

/** The audit log of admin actions (admin role). */
@RestController
@Tag(name = "admin")
public class AuditController {

  private final AuditLog audit;

  public AuditController(AuditLog audit) {
    this.audit = audit;
  }

  @GetMapping("/admin/audit")
  @Operation(summary = "Admin actions, newest first")
  public Map<String, List<AuditLog.Entry>> listAudit(
      @RequestParam(required = false) String action,
      @RequestParam(required = false) String actorKeyId,
      @RequestParam(required = false) String from,
      @RequestParam(required = false) String to,
      @RequestParam(required = false) String limit) {
    return Map.of(
        "data",
        audit.find(
            action,
            actorKeyId,
            QueryParams.instant("from", from),
            QueryParams.instant("to", to),
            QueryParams.integer("limit", limit, 100, 1, 1000)));
  }
}
