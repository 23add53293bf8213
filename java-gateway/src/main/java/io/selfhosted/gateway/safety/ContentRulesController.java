package io.selfhosted.gateway.safety;

import io.selfhosted.gateway.audit.AuditLog;
import io.selfhosted.gateway.auth.Caller;
import io.selfhosted.gateway.system.ApiException;
import io.swagger.v3.oas.annotations.Operation;
import io.swagger.v3.oas.annotations.tags.Tag;
import org.springframework.http.HttpStatus;
import org.springframework.security.core.annotation.AuthenticationPrincipal;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.RestController;

/** The content rules in force (admin role), and reloading them after an edit of the file. */
@RestController
@Tag(name = "admin")
public class ContentRulesController {

  private final RuleBasedContentFilter rules;
  private final AuditLog audit;

  public ContentRulesController(RuleBasedContentFilter rules, AuditLog audit) {
    this.rules = rules;
    this.audit = audit;
  }

  @GetMapping("/admin/content/rules")
  @Operation(summary = "The content rules in force: ids, categories, counts, file and load time")
  public RuleBasedContentFilter.Snapshot getRules() {
    return rules.snapshot();
  }

  @PostMapping("/admin/content/rules/reload")
  @Operation(summary = "Re-read the rules file now; an invalid file is refused and the rules stay")
  public RuleBasedContentFilter.Snapshot reloadRules(@AuthenticationPrincipal Caller admin) {
    RuleBasedContentFilter.Snapshot before = rules.snapshot();
    RuleBasedContentFilter.Snapshot after;
    try {
      after = rules.reload();
    } catch (ContentRulesException e) {
      throw new ApiException(
          HttpStatus.BAD_REQUEST,
          "invalid_request_error",
          "invalid_content_rules",
          null,
          e.getMessage());
    }
    audit.record(admin, "content.rules.reload", targetOf(after), before, after);
    return after;
  }

  private static String targetOf(RuleBasedContentFilter.Snapshot snapshot) {
    return snapshot.file() == null ? "content-rules" : snapshot.file();
  }
}
