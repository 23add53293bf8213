package io.selfhosted.gateway.safety;

import org.springframework.lang.Nullable;

/**
 * Scans one streamed reply as it arrives and says how much of it may be relayed so far. It holds
 * back only the tail that could still grow into a match, so text that matches a rule never reaches
 * the client, not even in part. One scanner serves one stream and is not thread-safe.
 */
public interface StreamScanner {

  /**
   * Feeds the next piece of the reply (may be empty). Returns the text that is safe to relay now,
   * or the verdict once the reply contains a match; from then on every call returns that verdict.
   *
   * @throws IllegalStateException after {@link #finish()}
   */
  Step next(String piece);

  /**
   * Ends the stream: a last check, then everything still held is released.
   *
   * @throws IllegalStateException when called twice
   */
  Step finish();

  /** A scanner that releases everything at once: for streams without rules. */
  static StreamScanner passThrough() {
    return new RuleScanner(RuleSet.EMPTY);
  }

  /**
   * What one step allows.
   *
   * @param release the original text to relay now, exactly as received (empty when blocked)
   * @param blocked the verdict when the reply matched a rule; null while it is clean
   */
  record Step(String release, @Nullable Verdict blocked) {

    static Step released(String text) {
      return new Step(text, null);
    }

    static Step blockedBy(Verdict verdict) {
      return new Step("", verdict);
    }

    public boolean isBlocked() {
      return blocked != null;
    }
  }
}
