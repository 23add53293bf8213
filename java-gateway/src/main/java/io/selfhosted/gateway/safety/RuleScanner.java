package io.selfhosted.gateway.safety;

import org.springframework.lang.Nullable;

/**
 * The stream scanner over a rule set. It keeps the unreleased text ({@code held}) and the folded
 * tail of the released text ({@code context}); each step folds only the held text, so a step costs
 * the size of the window (context + held + new), never the whole reply.
 *
 * <p>After each clean step all but the last {@code maxLength - 1} folded characters are released: a
 * match needs at most {@code maxLength} of them, so any match ending in a later piece starts in the
 * held text and none of it has reached the client. The cut falls on the start of a code point, so
 * characters that fold to nothing just before it are released and a code point that folds to
 * several characters is held whole.
 */
final class RuleScanner implements StreamScanner {

  private final RuleSet rules;
  private final int keep;
  private final StringBuilder held = new StringBuilder();
  private String context = "";
  private @Nullable Verdict blocked;
  private boolean finished;

  RuleScanner(RuleSet rules) {
    this.rules = rules;
    this.keep = Math.max(0, rules.maxLength() - 1);
  }

  @Override
  public Step next(String piece) {
    if (finished) {
      throw new IllegalStateException("the stream has finished");
    }
    if (blocked != null) {
      return Step.blockedBy(blocked);
    }
    if (rules.isEmpty()) {
      return Step.released(piece);
    }
    held.append(piece);
    TextNormalizer.Normalized folded = TextNormalizer.normalize(held);
    Verdict verdict = rules.find(context + folded.text());
    if (verdict != null) {
      return block(verdict);
    }
    int count = folded.length();
    int cut; // original chars released
    int foldedCut; // folded chars released
    if (count == 0 || keep == 0) {
      cut = held.length();
      foldedCut = count;
    } else {
      foldedCut = Math.max(0, count - keep);
      cut = folded.origin(foldedCut);
      while (foldedCut > 0 && folded.origin(foldedCut - 1) == cut) {
        foldedCut--; // hold the whole code point
      }
    }
    String release = held.substring(0, cut);
    held.delete(0, cut);
    remember(folded.text().substring(0, foldedCut));
    return Step.released(release);
  }

  @Override
  public Step finish() {
    if (finished) {
      throw new IllegalStateException("the stream has finished");
    }
    finished = true;
    if (blocked != null) {
      return Step.blockedBy(blocked);
    }
    if (!rules.isEmpty()) {
      Verdict verdict = rules.find(context + TextNormalizer.fold(held));
      if (verdict != null) {
        return block(verdict);
      }
    }
    String release = held.toString();
    held.setLength(0);
    context = "";
    return Step.released(release);
  }

  private Step block(Verdict verdict) {
    blocked = verdict;
    held.setLength(0);
    context = "";
    return Step.blockedBy(verdict);
  }

  private void remember(String released) {
    if (keep == 0) {
      return;
    }
    String joined = context + released;
    context = joined.length() <= keep ? joined : joined.substring(joined.length() - keep);
  }
}
