package io.selfhosted.gateway.safety;

import org.springframework.lang.Nullable;

/** Decides whether text may pass: whole prompts at once, streamed replies piece by piece. */
public interface ContentFilter {

  /** Checks a whole text (a prompt); null means clean. */
  @Nullable
  Verdict check(String text);

  /** A new scanner for one streamed reply, bound to the rules in force now. */
  StreamScanner scanner();
}
