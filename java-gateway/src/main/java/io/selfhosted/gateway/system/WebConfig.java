package io.selfhosted.gateway.system;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.List;
import org.springframework.context.annotation.Configuration;
import org.springframework.http.converter.HttpMessageConverter;
import org.springframework.web.servlet.config.annotation.CorsRegistry;
import org.springframework.web.servlet.config.annotation.ViewControllerRegistry;
import org.springframework.web.servlet.config.annotation.WebMvcConfigurer;

/**
 * The pages' routes (the chat page at {@code /}, the ops console at {@code /ops}), CORS from
 * configuration (with no allowed origins, only same-origin pages may call the API), and the strict
 * reader of {@link StrictJson} request bodies.
 */
@Configuration
public class WebConfig implements WebMvcConfigurer {

  private final HttpProperties properties;
  private final ObjectMapper mapper;

  public WebConfig(HttpProperties properties, ObjectMapper mapper) {
    this.properties = properties;
    this.mapper = mapper;
  }

  @Override
  public void extendMessageConverters(List<HttpMessageConverter<?>> converters) {
    // First, so that it reads the marked bodies before the lenient JSON converter can.
    converters.add(0, new StrictJsonConverter(mapper));
  }

  @Override
  public void addViewControllers(ViewControllerRegistry registry) {
    // The console page is public like the chat page: it signs in and checks the role itself, and
    // every /admin call behind it needs the admin role.
    registry.addViewController("/ops").setViewName("forward:/ops.html");
  }

  @Override
  public void addCorsMappings(CorsRegistry registry) {
    var origins = properties.cors().allowedOrigins();
    if (origins == null || origins.isEmpty()) {
      return;
    }
    for (String path : new String[] {"/v1/**", "/api/**", "/admin/**"}) {
      registry
          .addMapping(path)
          .allowedOrigins(origins.toArray(String[]::new))
          .allowedMethods("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
          .allowedHeaders("Authorization", "Content-Type", "Last-Event-ID", "X-Request-Id")
          .exposedHeaders(
              "X-Request-Id",
              "X-Degraded",
              "Retry-After",
              "x-ratelimit-limit-requests",
              "x-ratelimit-remaining-requests",
              "x-ratelimit-reset-requests",
              "x-ratelimit-limit-tokens",
              "x-ratelimit-remaining-tokens",
              "x-ratelimit-reset-tokens")
          .allowCredentials(true);
    }
  }
}
