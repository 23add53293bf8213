package io.selfhosted.gateway.auth;

import io.selfhosted.gateway.system.ApiException;
import jakarta.servlet.FilterChain;
import jakarta.servlet.ServletException;
import jakarta.servlet.http.Cookie;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.net.URI;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import org.springframework.http.HttpHeaders;
import org.springframework.security.access.AccessDeniedException;
import org.springframework.security.authentication.AbstractAuthenticationToken;
import org.springframework.security.core.authority.SimpleGrantedAuthority;
import org.springframework.security.core.context.SecurityContextHolder;
import org.springframework.security.web.access.AccessDeniedHandler;
import org.springframework.web.filter.OncePerRequestFilter;

/**
 * Authenticates a request by its bearer API key or, for browsers, by its session cookie. A
 * presented but unknown, revoked or expired credential leaves the request anonymous, so public
 * pages still load (a browser with a stale cookie must see the sign-in page), and the 401 of a
 * protected endpoint says what was wrong with it. A state-changing request authenticated by cookie
 * must come from an allowed origin, so another site cannot ride on the browser's session.
 */
class ApiKeyAuthenticationFilter extends OncePerRequestFilter {

  private static final Set<String> SAFE_METHODS = Set.of("GET", "HEAD", "OPTIONS");

  /** Why the credentials presented with a request were not accepted, for the 401 message. */
  static final String REJECTED = ApiKeyAuthenticationFilter.class.getName() + ".rejected";

  /**
   * The failure that kept a session from being checked (Redis down): a protected endpoint answers
   * with it (503) rather than with a 401 that would send the browser to the sign-in page.
   */
  static final String UNAVAILABLE = ApiKeyAuthenticationFilter.class.getName() + ".unavailable";

  private final ApiKeyService keys;
  private final SessionStore sessions;
  private final List<String> allowedOrigins;
  private final AccessDeniedHandler forbidden;

  ApiKeyAuthenticationFilter(
      ApiKeyService keys,
      SessionStore sessions,
      List<String> allowedOrigins,
      AccessDeniedHandler forbidden) {
    this.keys = keys;
    this.sessions = sessions;
    this.allowedOrigins = List.copyOf(allowedOrigins);
    this.forbidden = forbidden;
  }

  /** The authenticated caller as Spring Security holds it. */
  static final class KeyAuthentication extends AbstractAuthenticationToken {
    private final Caller caller;

    KeyAuthentication(Caller caller) {
      super(
          caller.role() == Caller.Role.ADMIN
              ? List.of(
                  new SimpleGrantedAuthority("ROLE_USER"), new SimpleGrantedAuthority("ROLE_ADMIN"))
              : List.of(new SimpleGrantedAuthority("ROLE_USER")));
      this.caller = caller;
      setAuthenticated(true);
    }

    @Override
    public Object getCredentials() {
      return "";
    }

    @Override
    public Caller getPrincipal() {
      return caller;
    }
  }

  @Override
  protected void doFilterInternal(
      HttpServletRequest request, HttpServletResponse response, FilterChain chain)
      throws ServletException, IOException {
    String header = request.getHeader(HttpHeaders.AUTHORIZATION);
    Optional<Caller> caller;
    if (header != null) {
      if (!header.regionMatches(true, 0, "Bearer ", 0, 7)) {
        anonymous(request, response, chain, "the Authorization header must be Bearer <api key>");
        return;
      }
      caller = keys.authenticate(header.substring(7).trim());
      if (caller.isEmpty()) {
        anonymous(request, response, chain, "invalid, revoked or expired API key");
        return;
      }
    } else {
      String token = sessionToken(request);
      if (token == null) {
        chain.doFilter(request, response); // anonymous: the authorization rules decide
        return;
      }
      try {
        caller = sessions.keyId(token).flatMap(keys::authenticateById);
      } catch (ApiException e) {
        request.setAttribute(UNAVAILABLE, e);
        chain.doFilter(request, response); // anonymous: public pages still load
        return;
      }
      if (caller.isEmpty()) {
        anonymous(
            request,
            response,
            chain,
            "the session has ended (signed out, expired, or its key was revoked)");
        return;
      }
      // Signing out is the one state change another site may cause: it harms nobody.
      boolean session = request.getRequestURI().equals(request.getContextPath() + "/api/session");
      if (!SAFE_METHODS.contains(request.getMethod()) && !session && !sameOrigin(request)) {
        forbidden.handle(
            request,
            response,
            new AccessDeniedException("cross-site request refused: Origin is not allowed"));
        return;
      }
    }
    var context = SecurityContextHolder.createEmptyContext();
    context.setAuthentication(new KeyAuthentication(caller.get()));
    SecurityContextHolder.setContext(context);
    try {
      chain.doFilter(request, response);
    } finally {
      SecurityContextHolder.clearContext();
    }
  }

  private static void anonymous(
      HttpServletRequest request, HttpServletResponse response, FilterChain chain, String why)
      throws IOException, ServletException {
    request.setAttribute(REJECTED, why);
    chain.doFilter(request, response);
  }

  private static String sessionToken(HttpServletRequest request) {
    Cookie[] cookies = request.getCookies();
    if (cookies != null) {
      for (Cookie cookie : cookies) {
        if (SessionStore.COOKIE.equals(cookie.getName())) {
          return cookie.getValue();
        }
      }
    }
    return null;
  }

  /** The Origin (or, lacking it, the Referer) names this gateway or a configured origin. */
  private boolean sameOrigin(HttpServletRequest request) {
    String origin = request.getHeader(HttpHeaders.ORIGIN);
    if (origin == null) {
      String referer = request.getHeader(HttpHeaders.REFERER);
      if (referer == null) {
        return false;
      }
      try {
        URI uri = URI.create(referer);
        origin = uri.getScheme() + "://" + uri.getRawAuthority();
      } catch (IllegalArgumentException e) {
        return false;
      }
    }
    if (allowedOrigins.contains(origin)) {
      return true;
    }
    String host = request.getHeader(HttpHeaders.HOST);
    return host != null && origin.equalsIgnoreCase(request.getScheme() + "://" + host);
  }
}
