package io.selfhosted.gateway.auth;

import io.selfhosted.gateway.pipeline.Exchange;
import io.selfhosted.gateway.pipeline.Stage;
import io.selfhosted.gateway.system.ApiException;
import org.springframework.http.HttpStatus;
import org.springframework.stereotype.Component;

/** Admission: a key limited to some models gets 403 for any other. */
@Component
public class ModelAccess implements Stage {

  @Override
  public void admit(Exchange exchange) {
    if (!exchange.caller().mayUse(exchange.model())) {
      throw new ApiException(
          HttpStatus.FORBIDDEN,
          "permission_error",
          "model_not_allowed",
          "model",
          "this API key may not use the model '" + exchange.model() + "'");
    }
  }
}
