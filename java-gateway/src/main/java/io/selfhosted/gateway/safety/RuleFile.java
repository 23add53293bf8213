package io.selfhosted.gateway.safety;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;
import org.springframework.lang.Nullable;
import org.yaml.snakeyaml.LoaderOptions;
import org.yaml.snakeyaml.Yaml;
import org.yaml.snakeyaml.constructor.SafeConstructor;
import org.yaml.snakeyaml.error.YAMLException;

/**
 * Reads and strictly validates a content rules document:
 *
 * <pre>
 * rules:
 *   - id: weapons-en            # required, unique
 *     category: violence        # required
 *     keywords: ["make a bomb"] # folded like the scanned text (TextNormalizer)
 *     patterns: ["how\\s*to\\s*build\\s*a\\s*(pipe)?bomb"]
 *     max-length: 40            # longest match of the patterns, default 32
 * </pre>
 *
 * Patterns see folded text: lower case, NFKC, no whitespace and no invisible characters; a stream
 * is matched through a sliding window, so {@code ^} and {@code $} do not mean start and end of the
 * reply.
 */
final class RuleFile {

  static final int DEFAULT_PATTERN_MAX_LENGTH = 32;

  /** Holding back more than this would make streaming visibly stall. */
  static final int LIMIT_PATTERN_MAX_LENGTH = 1024;

  private static final List<String> RULE_KEYS =
      List.of("id", "category", "keywords", "patterns", "max-length");

  private RuleFile() {}

  /** Parses a document; {@code source} names it in error messages. */
  static RuleSet parse(String yaml, String source) {
    LoaderOptions options = new LoaderOptions();
    options.setAllowDuplicateKeys(false);
    options.setMaxAliasesForCollections(0);
    Object document;
    try {
      document = new Yaml(new SafeConstructor(options)).load(yaml);
    } catch (YAMLException e) {
      throw new ContentRulesException(source + ": not valid YAML: " + e.getMessage(), e);
    }
    if (!(document instanceof Map<?, ?> root)) {
      throw new ContentRulesException(
          source + ": expected a mapping with a top-level 'rules' list");
    }
    for (Object key : root.keySet()) {
      if (!"rules".equals(key)) {
        throw new ContentRulesException(
            source + ": unknown top-level key '" + key + "' (only 'rules' is allowed)");
      }
    }
    Object items = root.get("rules");
    if (!(items instanceof List<?> list)) {
      throw new ContentRulesException(source + ": 'rules' must be a list of rules");
    }
    List<RuleSet.Rule> rules = new ArrayList<>();
    Map<String, Integer> seen = new HashMap<>();
    for (int i = 0; i < list.size(); i++) {
      RuleSet.Rule rule = rule(list.get(i), i + 1, source);
      Integer earlier = seen.putIfAbsent(rule.id(), i + 1);
      if (earlier != null) {
        throw new ContentRulesException(
            source
                + ": rule id '"
                + rule.id()
                + "' is used twice (rules #"
                + earlier
                + " and #"
                + (i + 1)
                + ")");
      }
      rules.add(rule);
    }
    return new RuleSet(rules);
  }

  private static RuleSet.Rule rule(Object item, int position, String source) {
    if (!(item instanceof Map<?, ?> map)) {
      throw new ContentRulesException(
          source + ": rule #" + position + " must be a mapping with id, category, keywords...");
    }
    Object rawId = map.get("id");
    if (!(rawId instanceof String text) || text.isBlank()) {
      throw new ContentRulesException(
          source + ": rule #" + position + " has no id (a non-empty text is required)");
    }
    String id = text.strip();
    String where = source + ": rule '" + id + "'";
    for (Object key : map.keySet()) {
      if (!RULE_KEYS.contains(key)) {
        throw new ContentRulesException(
            where + ": unknown key '" + key + "' (allowed: " + String.join(", ", RULE_KEYS) + ")");
      }
    }
    if (!(map.get("category") instanceof String category) || category.isBlank()) {
      throw new ContentRulesException(where + ": category is missing");
    }
    List<String> keywords = new ArrayList<>();
    for (String keyword : texts(map.get("keywords"), "keywords", where)) {
      String folded = TextNormalizer.fold(keyword);
      if (folded.isEmpty()) {
        throw new ContentRulesException(
            where + ": keyword \"" + keyword + "\" is empty once spaces are removed");
      }
      keywords.add(folded);
    }
    List<Pattern> patterns = new ArrayList<>();
    for (String regex : texts(map.get("patterns"), "patterns", where)) {
      Pattern pattern;
      try {
        pattern = Pattern.compile(regex);
      } catch (PatternSyntaxException e) {
        throw new ContentRulesException(
            where + ": pattern \"" + regex + "\" is not a valid regex: " + e.getDescription(), e);
      }
      if (pattern.matcher("").find()) {
        throw new ContentRulesException(
            where + ": pattern \"" + regex + "\" matches empty text, so it would flag everything");
      }
      patterns.add(pattern);
    }
    if (keywords.isEmpty() && patterns.isEmpty()) {
      throw new ContentRulesException(where + ": the rule has neither keywords nor patterns");
    }
    int maxLength = maxLength(map.get("max-length"), patterns.isEmpty(), where);
    return new RuleSet.Rule(id, category.strip(), keywords, patterns, maxLength);
  }

  private static List<String> texts(@Nullable Object value, String key, String where) {
    if (value == null) {
      return List.of();
    }
    if (!(value instanceof List<?> list)) {
      throw new ContentRulesException(where + ": " + key + " must be a list of texts");
    }
    List<String> texts = new ArrayList<>();
    for (Object item : list) {
      if (!(item instanceof String text) || text.isEmpty()) {
        throw new ContentRulesException(
            where + ": " + key + " must be a list of non-empty texts, found " + item);
      }
      texts.add(text);
    }
    return texts;
  }

  private static int maxLength(@Nullable Object value, boolean noPatterns, String where) {
    if (value == null) {
      return noPatterns ? 0 : DEFAULT_PATTERN_MAX_LENGTH;
    }
    if (noPatterns) {
      throw new ContentRulesException(
          where + ": max-length applies to patterns, and the rule has none");
    }
    if (!(value instanceof Integer length) || length < 1 || length > LIMIT_PATTERN_MAX_LENGTH) {
      throw new ContentRulesException(
          where + ": max-length must be a whole number from 1 to " + LIMIT_PATTERN_MAX_LENGTH);
    }
    return length;
  }
}
