package io.selfhosted.gateway.auth;

import io.selfhosted.gateway.pipeline.Exchange;
import io.selfhosted.gateway.pipeline.Stage;
import io.selfhosted.gateway.system.ApiException;
import org.springframework.http.HttpStatus;
import org.springframework.stereotype.Component;

/** Admission: a key limited to some models (or to none) gets 403 for any other. */
@Component
public class ModelAccess implements Stage {

  @Override
  public void admit(Exchange exchange) {
    Caller caller = exchange.caller();
    if (!caller.mayUse(exchange.model())) {
      throw new ApiException(
          HttpStatus.FORBIDDEN,
          "permission_error",
          "model_not_allowed",
          "model",
          caller.models().none()
              ? "this API key may use no model (its models list is empty)"
              : "this API key may not use the model '" + exchange.model() + "'");
    }
  }
}
