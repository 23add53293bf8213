package io.selfhosted.gateway.pipeline;

/**
 * Thrown by a stage while chunks flow to stop the generation: the upstream is cancelled and the
 * client's reply ends normally with {@link #finishReason()} (for example {@code content_filter}).
 */
public final class EndGeneration extends RuntimeException {

  private final String finishReason;

  public EndGeneration(String finishReason, String why) {
    super(why, null, false, false);
    this.finishReason = finishReason;
  }

  public String finishReason() {
    return finishReason;
  }
}
