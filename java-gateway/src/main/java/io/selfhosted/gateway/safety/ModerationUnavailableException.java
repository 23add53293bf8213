package io.selfhosted.gateway.safety;

/** The moderation service failed and moderation fails closed: the text may not pass unchecked. */
public class ModerationUnavailableException extends RuntimeException {

  public ModerationUnavailableException(String message, Throwable cause) {
    super(message, cause);
  }
}
