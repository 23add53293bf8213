package io.selfhosted.gateway.auth;

import io.selfhosted.gateway.system.GatewayProperties;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import org.springframework.stereotype.Component;

/**
 * Checks presented keys against ADMIN_API_KEY in constant time. With no key configured nothing
 * matches, so the gateway is never open by accident.
 */
@Component
public class ApiKeyVerifier {

  private final byte[] expectedDigest;

  public ApiKeyVerifier(GatewayProperties properties) {
    String key = properties.adminApiKey();
    this.expectedDigest = key == null || key.isBlank() ? null : sha256(key);
  }

  public boolean isConfigured() {
    return expectedDigest != null;
  }

  public boolean matches(String presented) {
    if (expectedDigest == null || presented == null) {
      return false;
    }
    // Comparing fixed-length digests keeps the time independent of the key and its length.
    return MessageDigest.isEqual(expectedDigest, sha256(presented));
  }

  private static byte[] sha256(String value) {
    try {
      return MessageDigest.getInstance("SHA-256").digest(value.getBytes(StandardCharsets.UTF_8));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
