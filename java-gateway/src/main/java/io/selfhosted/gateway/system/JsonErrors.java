package io.selfhosted.gateway.system;

import com.fasterxml.jackson.databind.ObjectMapper;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import org.springframework.http.HttpHeaders;
import org.springframework.http.MediaType;

/** Writes the error envelope from servlet filters, which run before Spring MVC's advice. */
public final class JsonErrors {

  private static final ObjectMapper MAPPER = new ObjectMapper();

  private JsonErrors() {}

  public static void write(HttpServletResponse response, ApiException e) throws IOException {
    response.setStatus(e.status().value());
    response.setContentType(MediaType.APPLICATION_JSON_VALUE);
    response.setCharacterEncoding(StandardCharsets.UTF_8.name());
    if (e.retryAfterSeconds() != null) {
      response.setHeader(HttpHeaders.RETRY_AFTER, Long.toString(e.retryAfterSeconds()));
    }
    e.headers().forEach(response::setHeader);
    response.getOutputStream().write(MAPPER.writeValueAsBytes(e.envelope()));
    response.flushBuffer();
  }
}
