package io.selfhosted.gateway.safety;

/** The content rules file cannot be used; the message names the file and the rule at fault. */
public class ContentRulesException extends RuntimeException {

  public ContentRulesException(String message) {
    super(message);
  }

  public ContentRulesException(String message, Throwable cause) {
    super(message, cause);
  }
}
