package io.selfhosted.gateway.safety;

/** Rule files shared by the content-check tests. */
final class TestRules {

  private TestRules() {}

  /** Keywords only: the longest folds to "makeabomb". */
  static final String KEYWORDS =
      """
      rules:
        - id: weapons-zh
          category: violence
          keywords: ["制造炸弹", "炸弹制作"]
        - id: weapons-en
          category: violence
          keywords: ["make a bomb"]
      """;

  /** The same weapons rules, the English one with a 40-character pattern as well. */
  static final String WEAPONS =
      KEYWORDS
          + "    patterns: [\"how\\\\s*to\\\\s*build\\\\s*a\\\\s*(pipe)?bomb\"]\n"
          + "    max-length: 40\n";

  /** The weapons rules and a card-number pattern. */
  static final String WEAPONS_AND_CARDS =
      WEAPONS
          + "  - id: cards\n"
          + "    category: privacy\n"
          + "    patterns: [\"\\\\d{4}-?\\\\d{4}-?\\\\d{4}-?\\\\d{4}\"]\n"
          + "    max-length: 19\n";
}
