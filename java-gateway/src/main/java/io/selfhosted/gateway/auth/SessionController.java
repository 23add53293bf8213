package io.selfhosted.gateway.auth;

import io.selfhosted.gateway.system.ApiException;
import io.swagger.v3.oas.annotations.Operation;
import io.swagger.v3.oas.annotations.tags.Tag;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.validation.Valid;
import java.util.Map;
import org.springframework.http.HttpHeaders;
import org.springframework.http.HttpStatus;
import org.springframework.http.ResponseCookie;
import org.springframework.http.ResponseEntity;
import org.springframework.security.core.annotation.AuthenticationPrincipal;
import org.springframework.web.bind.annotation.CookieValue;
import org.springframework.web.bind.annotation.DeleteMapping;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.RequestBody;
import org.springframework.web.bind.annotation.RequestMapping;
import org.springframework.web.bind.annotation.RestController;

/**
 * Trades an API key for an HttpOnly, SameSite=Strict session cookie, so the browser never stores
 * the key. The cookie is Secure whenever the gateway is reached over TLS.
 */
@RestController
@RequestMapping("/api/session")
@Tag(name = "session")
public class SessionController {

  private final ApiKeyService keys;
  private final SessionStore sessions;

  public SessionController(ApiKeyService keys, SessionStore sessions) {
    this.keys = keys;
    this.sessions = sessions;
  }

  @PostMapping
  @Operation(summary = "Open a browser session with an API key (sets the gw_session cookie)")
  public ResponseEntity<Void> openSession(
      @Valid @RequestBody SessionRequest body,
      @CookieValue(name = SessionStore.COOKIE, required = false) String previous,
      HttpServletRequest request) {
    Caller caller =
        keys.authenticate(body.apiKey())
            .orElseThrow(
                () ->
                    new ApiException(
                        HttpStatus.UNAUTHORIZED,
                        "authentication_error",
                        "invalid_api_key",
                        "apiKey",
                        "invalid, revoked or expired API key"));
    sessions.close(previous); // the cookie is about to be replaced: nothing could use it again
    ResponseCookie cookie =
        cookie(sessions.open(caller.keyId()), request).maxAge(sessions.ttl()).build();
    return ResponseEntity.noContent().header(HttpHeaders.SET_COOKIE, cookie.toString()).build();
  }

  @GetMapping
  @Operation(summary = "Who this session (or key) is")
  public Map<String, Object> whoAmI(
      @AuthenticationPrincipal Caller caller, HttpServletRequest request) {
    // Not a 401 while sessions cannot be checked: the page would take it for a sign-out.
    if (request.getAttribute(ApiKeyAuthenticationFilter.UNAVAILABLE) instanceof ApiException e) {
      throw e;
    }
    if (caller == null) {
      throw new ApiException(
          HttpStatus.UNAUTHORIZED,
          "authentication_error",
          "invalid_api_key",
          null,
          "missing or invalid API key");
    }
    return Map.of(
        "keyId", caller.keyId(),
        "name", caller.name(),
        "role", caller.role().wireName(),
        "models", caller.models(),
        "limits", caller.limits());
  }

  @DeleteMapping
  @Operation(summary = "Close the browser session (on every gateway replica)")
  public ResponseEntity<Void> closeSession(
      @CookieValue(name = SessionStore.COOKIE, required = false) String token,
      HttpServletRequest request) {
    sessions.close(token);
    ResponseCookie expired = cookie("", request).maxAge(0).build();
    return ResponseEntity.noContent().header(HttpHeaders.SET_COOKIE, expired.toString()).build();
  }

  private static ResponseCookie.ResponseCookieBuilder cookie(
      String value, HttpServletRequest request) {
    return ResponseCookie.from(SessionStore.COOKIE, value)
        .httpOnly(true)
        .secure(request.isSecure())
        .sameSite("Strict")
        .path("/");
  }
}
