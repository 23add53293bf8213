package io.selfhosted.gateway.auth;

import io.selfhosted.gateway.system.ApiException;
import io.selfhosted.gateway.system.JsonErrors;
import jakarta.servlet.FilterChain;
import jakarta.servlet.ServletException;
import jakarta.servlet.http.Cookie;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import org.springframework.core.Ordered;
import org.springframework.core.annotation.Order;
import org.springframework.http.HttpHeaders;
import org.springframework.http.HttpStatus;
import org.springframework.stereotype.Component;
import org.springframework.web.filter.OncePerRequestFilter;

/**
 * Every /v1 and /api request carries the admin key as a bearer token or a session cookie, until the
 * governance issue brings per-client keys.
 */
@Component
@Order(Ordered.HIGHEST_PRECEDENCE + 20)
public class ApiKeyFilter extends OncePerRequestFilter {

  private final ApiKeyVerifier verifier;
  private final SessionStore sessions;

  public ApiKeyFilter(ApiKeyVerifier verifier, SessionStore sessions) {
    this.verifier = verifier;
    this.sessions = sessions;
  }

  @Override
  protected boolean shouldNotFilter(HttpServletRequest request) {
    String path = request.getRequestURI().substring(request.getContextPath().length());
    boolean api = path.startsWith("/v1/") || path.startsWith("/api/");
    boolean preflight =
        "OPTIONS".equals(request.getMethod())
            && request.getHeader(HttpHeaders.ORIGIN) != null
            && request.getHeader(HttpHeaders.ACCESS_CONTROL_REQUEST_METHOD) != null;
    return !api || preflight || path.equals("/api/session");
  }

  @Override
  protected void doFilterInternal(
      HttpServletRequest request, HttpServletResponse response, FilterChain chain)
      throws ServletException, IOException {
    if (isAuthenticated(request)) {
      chain.doFilter(request, response);
      return;
    }
    String message =
        verifier.isConfigured()
            ? "missing or invalid API key"
            : "the gateway has no ADMIN_API_KEY configured; API access is disabled";
    response.setHeader(HttpHeaders.WWW_AUTHENTICATE, "Bearer");
    JsonErrors.write(
        response,
        new ApiException(
            HttpStatus.UNAUTHORIZED, "authentication_error", "invalid_api_key", null, message));
  }

  private boolean isAuthenticated(HttpServletRequest request) {
    if (!verifier.isConfigured()) {
      return false;
    }
    String header = request.getHeader(HttpHeaders.AUTHORIZATION);
    if (header != null && header.regionMatches(true, 0, "Bearer ", 0, 7)) {
      return verifier.matches(header.substring(7).trim());
    }
    Cookie[] cookies = request.getCookies();
    if (cookies != null) {
      for (Cookie cookie : cookies) {
        if (SessionStore.COOKIE.equals(cookie.getName()) && sessions.isValid(cookie.getValue())) {
          return true;
        }
      }
    }
    return false;
  }
}
