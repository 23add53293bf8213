package io.selfhosted.gateway.degrade;

import io.selfhosted.gateway.pipeline.DegradationLog;
import io.selfhosted.gateway.pipeline.Exchange;
import io.selfhosted.gateway.pipeline.Stage;
import io.selfhosted.gateway.system.ApiException;
import io.selfhosted.gateway.upstream.LoadMonitor;
import io.selfhosted.gateway.upstream.SheddingProperties;
import java.util.OptionalDouble;
import org.springframework.http.HttpStatus;
import org.springframework.stereotype.Component;

/**
 * Sheds load before the model tier collapses: when every replica's estimated wait for a first token
 * is past {@code gateway.shedding.max-wait}, a new request gets 503 with Retry-After at once
 * instead of queueing work that would time out.
 */
@Component
public class LoadShedding implements Stage {

  private final LoadMonitor monitor;
  private final SheddingProperties properties;
  private final DegradationLog degradations;

  LoadShedding(LoadMonitor monitor, SheddingProperties properties, DegradationLog degradations) {
    this.monitor = monitor;
    this.properties = properties;
    this.degradations = degradations;
  }

  @Override
  public void admit(Exchange exchange) {
    if (properties.maxWait().isZero()) {
      return;
    }
    OptionalDouble wait = monitor.bestEstimatedWaitSeconds();
    double bound = properties.maxWait().toMillis() / 1000.0;
    if (wait.isPresent() && wait.getAsDouble() > bound) {
      long retryAfter = Math.max(1, (long) Math.ceil(wait.getAsDouble() - bound));
      degradations.record(
          exchange,
          "shed",
          "overloaded",
          String.format("estimated wait %.1f s > %.1f s", wait.getAsDouble(), bound));
      throw new ApiException(
          HttpStatus.SERVICE_UNAVAILABLE,
          "server_error",
          "overloaded",
          null,
          String.format(
              "the model is overloaded: a new request would wait about %.0f s for its first"
                  + " token; retry later",
              wait.getAsDouble()),
          retryAfter);
    }
  }
}
