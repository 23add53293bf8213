package io.selfhosted.gateway.status;

import io.swagger.v3.oas.annotations.Operation;
import io.swagger.v3.oas.annotations.tags.Tag;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.RestController;

/** The live service state for the ops console (admin role). */
@RestController
@Tag(name = "admin")
class StatusController {

  private final ServiceStatus status;

  StatusController(ServiceStatus status) {
    this.status = status;
  }

  @GetMapping("/admin/status")
  @Operation(
      summary = "This gateway's live state",
      description =
          "Active streams, token and request rates, error rate, queue depth, readiness and"
              + " breaker per replica and per model, the switches in effect, and a history of the"
              + " rates over the last minutes.")
  ServiceStatus.Snapshot status() {
    return status.snapshot();
  }
}
