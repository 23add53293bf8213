package io.selfhosted.gateway.auth;

import io.selfhosted.gateway.system.ApiException;
import io.selfhosted.gateway.system.HttpProperties;
import io.selfhosted.gateway.system.JsonErrors;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.http.HttpHeaders;
import org.springframework.http.HttpMethod;
import org.springframework.http.HttpStatus;
import org.springframework.security.config.annotation.ObjectPostProcessor;
import org.springframework.security.config.annotation.web.builders.HttpSecurity;
import org.springframework.security.config.annotation.web.configurers.AbstractHttpConfigurer;
import org.springframework.security.config.http.SessionCreationPolicy;
import org.springframework.security.core.AuthenticationException;
import org.springframework.security.web.AuthenticationEntryPoint;
import org.springframework.security.web.SecurityFilterChain;
import org.springframework.security.web.access.AccessDeniedHandler;
import org.springframework.security.web.authentication.AnonymousAuthenticationFilter;
import org.springframework.security.web.header.HeaderWriterFilter;
import org.springframework.security.web.header.writers.ReferrerPolicyHeaderWriter.ReferrerPolicy;

/**
 * Who may call what. API keys (bearer) and browser sessions (cookie) authenticate; the admin API
 * and the metrics need the admin role, the OpenAPI document what {@code gateway.auth.api-docs} says
 * (by default any key). Refusals use the shared error envelope: 401 for no or bad credentials, 403
 * for a known caller without the right role. Every reply carries the security headers: a
 * Content-Security-Policy allowing only the pages' own scripts and styles, nosniff, no framing, and
 * a strict Referrer-Policy.
 */
@Configuration
public class SecurityConfig {

  static final String CONTENT_SECURITY_POLICY =
      "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
          + " connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self';"
          + " frame-ancestors 'none'";

  @Bean
  SecurityFilterChain securityFilterChain(
      HttpSecurity http,
      ApiKeyService keys,
      SessionStore sessions,
      HttpProperties httpProperties,
      AuthProperties auth,
      @Value("${springdoc.api-docs.path:/v3/api-docs}") String apiDocsPath)
      throws Exception {
    AuthenticationEntryPoint unauthorized = SecurityConfig::unauthorized;
    AccessDeniedHandler forbidden =
        (request, response, denied) ->
            JsonErrors.write(
                response,
                new ApiException(
                    HttpStatus.FORBIDDEN,
                    "permission_error",
                    "forbidden",
                    null,
                    denied.getMessage() != null && denied.getMessage().startsWith("cross-site")
                        ? denied.getMessage()
                        : "this API key may not do that"));
    http.csrf(AbstractHttpConfigurer::disable) // cookie requests are origin-checked instead
        .cors(cors -> {})
        .httpBasic(AbstractHttpConfigurer::disable)
        .formLogin(AbstractHttpConfigurer::disable)
        .logout(AbstractHttpConfigurer::disable)
        .requestCache(AbstractHttpConfigurer::disable)
        .sessionManagement(s -> s.sessionCreationPolicy(SessionCreationPolicy.STATELESS))
        .headers(
            headers ->
                headers
                    // Written before the request is handled, not when the response commits: a
                    // stream's response is committed by the thread that reads the upstream, and
                    // this one must not touch the response's headers at the same time.
                    .withObjectPostProcessor(
                        new ObjectPostProcessor<HeaderWriterFilter>() {
                          @Override
                          public <O extends HeaderWriterFilter> O postProcess(O filter) {
                            filter.setShouldWriteHeadersEagerly(true);
                            return filter;
                          }
                        })
                    .contentSecurityPolicy(csp -> csp.policyDirectives(CONTENT_SECURITY_POLICY))
                    .frameOptions(frame -> frame.deny())
                    .referrerPolicy(referrer -> referrer.policy(ReferrerPolicy.NO_REFERRER)))
        .addFilterBefore(
            new ApiKeyAuthenticationFilter(
                keys, sessions, httpProperties.cors().allowedOrigins(), forbidden),
            AnonymousAuthenticationFilter.class)
        .exceptionHandling(
            e -> e.authenticationEntryPoint(unauthorized).accessDeniedHandler(forbidden))
        .authorizeHttpRequests(
            rules -> {
              rules
                  .requestMatchers(HttpMethod.OPTIONS, "/v1/**", "/api/**", "/admin/**")
                  .permitAll();
              rules.requestMatchers("/api/session").permitAll();
              rules.requestMatchers("/admin/**").hasRole("ADMIN");
              rules.requestMatchers("/v1/**", "/api/**").hasRole("USER");
              rules.requestMatchers("/actuator/health", "/actuator/health/**").permitAll();
              if (auth.openMetrics()) {
                rules.requestMatchers("/actuator/prometheus").permitAll();
              }
              rules.requestMatchers("/actuator/**").hasRole("ADMIN");
              // The document itself, its .yaml twin and any group under it.
              var apiDocs = rules.requestMatchers(apiDocsPath + "*", apiDocsPath + "/**");
              switch (auth.apiDocs()) {
                case PUBLIC -> apiDocs.permitAll();
                case AUTHENTICATED -> apiDocs.hasRole("USER");
                case ADMIN -> apiDocs.hasRole("ADMIN");
              }
              rules.anyRequest().permitAll(); // the pages and their assets
            });
    return http.build();
  }

  private static void unauthorized(
      HttpServletRequest request, HttpServletResponse response, AuthenticationException failure)
      throws IOException {
    if (request.getAttribute(ApiKeyAuthenticationFilter.UNAVAILABLE) instanceof ApiException e) {
      JsonErrors.write(response, e);
      return;
    }
    response.setHeader(HttpHeaders.WWW_AUTHENTICATE, "Bearer");
    Object rejected = request.getAttribute(ApiKeyAuthenticationFilter.REJECTED);
    String message =
        rejected != null
            ? rejected.toString()
            : "an API key is required (Authorization: Bearer <key>)";
    JsonErrors.write(
        response,
        new ApiException(
            HttpStatus.UNAUTHORIZED, "authentication_error", "invalid_api_key", null, message));
  }
}
