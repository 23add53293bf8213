package io.selfhosted.gateway.auth;

import com.fasterxml.jackson.databind.JsonNode;
import io.selfhosted.gateway.system.ApiException;
import org.springframework.http.HttpHeaders;
import org.springframework.http.HttpStatus;
import org.springframework.http.ResponseCookie;
import org.springframework.http.ResponseEntity;
import org.springframework.web.bind.annotation.CookieValue;
import org.springframework.web.bind.annotation.DeleteMapping;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.RequestBody;
import org.springframework.web.bind.annotation.RequestMapping;
import org.springframework.web.bind.annotation.RestController;

/** Trades an API key for an HttpOnly session cookie, so the browser never stores the key. */
@RestController
@RequestMapping("/api/session")
public class SessionController {

  private final ApiKeyVerifier verifier;
  private final SessionStore sessions;

  public SessionController(ApiKeyVerifier verifier, SessionStore sessions) {
    this.verifier = verifier;
    this.sessions = sessions;
  }

  @PostMapping
  public ResponseEntity<Void> openSession(@RequestBody JsonNode body) {
    JsonNode key = body == null ? null : body.get("apiKey");
    if (key == null || !key.isTextual()) {
      throw ApiException.invalid("apiKey", "apiKey must be a string");
    }
    if (!verifier.matches(key.asText())) {
      throw new ApiException(
          HttpStatus.UNAUTHORIZED,
          "authentication_error",
          "invalid_api_key",
          "apiKey",
          "invalid API key");
    }
    ResponseCookie cookie =
        ResponseCookie.from(SessionStore.COOKIE, sessions.open())
            .httpOnly(true)
            .sameSite("Strict")
            .path("/")
            .maxAge(SessionStore.TTL)
            .build();
    return ResponseEntity.noContent().header(HttpHeaders.SET_COOKIE, cookie.toString()).build();
  }

  @DeleteMapping
  public ResponseEntity<Void> closeSession(
      @CookieValue(name = SessionStore.COOKIE, required = false) String token) {
    sessions.close(token);
    ResponseCookie expired =
        ResponseCookie.from(SessionStore.COOKIE, "")
            .httpOnly(true)
            .sameSite("Strict")
            .path("/")
            .maxAge(0)
            .build();
    return ResponseEntity.noContent().header(HttpHeaders.SET_COOKIE, expired.toString()).build();
  }
}
