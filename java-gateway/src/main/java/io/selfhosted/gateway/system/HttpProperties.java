package io.selfhosted.gateway.system;

import java.util.List;
import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.boot.context.properties.bind.DefaultValue;
import org.springframework.util.unit.DataSize;

/** HTTP-level settings: the largest request body, and cross-origin callers. */
@ConfigurationProperties("gateway.http")
public record HttpProperties(@DefaultValue("1MB") DataSize maxBodySize, @DefaultValue Cors cors) {

  /** Cross-origin callers allowed; empty means same-origin only. */
  public record Cors(@DefaultValue List<String> allowedOrigins) {}
}
