package io.selfhosted.gateway.safety;

import java.util.List;
import java.util.regex.Pattern;
import org.springframework.lang.Nullable;

/** An immutable set of rules, matched against folded text (see {@link TextNormalizer}). */
final class RuleSet {

  static final RuleSet EMPTY = new RuleSet(List.of());

  /**
   * One rule.
   *
   * @param keywords folded keywords
   * @param patterns regexes over folded text
   * @param patternMaxLength the longest folded text a pattern match may span (0 without patterns)
   */
  record Rule(
      String id,
      String category,
      List<String> keywords,
      List<Pattern> patterns,
      int patternMaxLength) {

    Rule {
      keywords = List.copyOf(keywords);
      patterns = List.copyOf(patterns);
    }

    /** The longest folded text a match of this rule spans. */
    int maxLength() {
      int longest = patterns.isEmpty() ? 0 : patternMaxLength;
      for (String keyword : keywords) {
        longest = Math.max(longest, keyword.length());
      }
      return longest;
    }

    @Nullable
    Verdict find(String folded) {
      for (String keyword : keywords) {
        if (folded.contains(keyword)) {
          return new Verdict(id, category);
        }
      }
      for (Pattern pattern : patterns) {
        if (pattern.matcher(folded).find()) {
          return new Verdict(id, category);
        }
      }
      return null;
    }
  }

  private final List<Rule> rules;
  private final int maxLength;

  RuleSet(List<Rule> rules) {
    this.rules = List.copyOf(rules);
    this.maxLength = this.rules.stream().mapToInt(Rule::maxLength).max().orElse(0);
  }

  List<Rule> rules() {
    return rules;
  }

  boolean isEmpty() {
    return rules.isEmpty();
  }

  /** The longest folded text any match spans; a stream scanner holds back one less. */
  int maxLength() {
    return maxLength;
  }

  /** The first rule (in file order) that matches the folded text; null when none does. */
  @Nullable
  Verdict find(String folded) {
    for (Rule rule : rules) {
      Verdict verdict = rule.find(folded);
      if (verdict != null) {
        return verdict;
      }
    }
    return null;
  }
}
