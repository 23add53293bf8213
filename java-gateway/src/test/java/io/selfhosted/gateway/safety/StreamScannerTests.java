package io.selfhosted.gateway.safety;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.springframework.lang.Nullable;

/** What a client receives of a streamed reply, chunk by chunk, under keyword and regex rules. */
class StreamScannerTests {

  private static final String RULES = TestRules.WEAPONS_AND_CARDS;

  /** Keywords only: the longest folds to "makeabomb", so 8 folded characters are held back. */
  private static final String KEYWORDS = TestRules.KEYWORDS;

  private static final Verdict WEAPONS_ZH = new Verdict("weapons-zh", "violence");
  private static final Verdict WEAPONS_EN = new Verdict("weapons-en", "violence");
  private static final Verdict CARDS = new Verdict("cards", "privacy");

  private static RuleSet rules(String yaml) {
    return RuleFile.parse(yaml, "test rules");
  }

  /**
   * Feeds chunks like a relay would and checks after every step that what was released is an exact
   * prefix of the input and that no more is held back than the longest rule needs.
   */
  private static final class Relay {
    final RuleSet rules;
    final StreamScanner scanner;
    final StringBuilder input = new StringBuilder();
    final StringBuilder released = new StringBuilder();
    final List<Integer> heldBack = new ArrayList<>();
    @Nullable Verdict verdict;

    Relay(RuleSet rules) {
      this.rules = rules;
      this.scanner = new RuleScanner(rules);
    }

    Relay feed(String... chunks) {
      for (String chunk : chunks) {
        input.append(chunk);
        record(scanner.next(chunk));
        if (verdict != null) {
          return this;
        }
        String held = input.substring(released.length());
        int foldedHeld = TextNormalizer.fold(held).length();
        heldBack.add(foldedHeld);
        int keep = Math.max(0, rules.maxLength() - 1);
        if (foldedHeld > keep) {
          // Only when the cut falls inside a code point that folds to several characters (a
          // ligature, an emoji's surrogate pair): that code point is held whole.
          String rest = held.substring(held.offsetByCodePoints(0, 1));
          assertThat(TextNormalizer.fold(rest).length()).isLessThan(keep);
        }
      }
      return this;
    }

    Relay finish() {
      record(scanner.finish());
      return this;
    }

    private void record(StreamScanner.Step step) {
      if (step.isBlocked()) {
        assertThat(step.release()).isEmpty();
        verdict = step.blocked();
        return;
      }
      released.append(step.release());
      assertThat(input.toString()).startsWith(released.toString());
    }
  }

  @Test
  void aBannedWordSplitAcrossTwoChunksIsBlockedAndNoneOfItIsReleased() {
    Relay relay = new Relay(rules(KEYWORDS)).feed("Sure, here is how to make a b", "omb: first");

    assertThat(relay.verdict).isEqualTo(WEAPONS_EN);
    assertThat(relay.released.toString()).isEqualTo("Sure, here is how ");
  }

  @Test
  void aBannedWordSplitAcrossThreeChunksIsBlockedAndNoneOfItIsReleased() {
    Relay relay = new Relay(rules(KEYWORDS)).feed("好的，下面介绍如何制", "造炸", "弹的步骤");

    assertThat(relay.verdict).isEqualTo(WEAPONS_ZH);
    assertThat(relay.released.toString()).isEqualTo("好的，下");
  }

  @Test
  void everySplitIntoThreeChunksIsCaughtBeforeAnyPartOfTheMatchIsReleased() {
    String reply = "Well. To MAKE\u200b A ＢＯＭＢ you need";
    int matchStart = reply.indexOf("MAKE");
    for (int first = 0; first <= reply.length(); first++) {
      for (int second = first; second <= reply.length(); second++) {
        Relay relay =
            new Relay(rules(KEYWORDS))
                .feed(
                    reply.substring(0, first),
                    reply.substring(first, second),
                    reply.substring(second));
        if (relay.verdict == null) {
          relay.finish();
        }

        assertThat(relay.verdict).as("split at %d/%d", first, second).isEqualTo(WEAPONS_EN);
        assertThat(relay.released.length()).isLessThanOrEqualTo(matchStart);
      }
    }
  }

  @Test
  void variantsOfTheBannedWordAreBlockedInAStream() {
    for (String variant :
        List.of(
            "make a bomb",
            "MaKe A BoMb",
            "ｍａｋｅ ａ ｂｏｍｂ",
            "m a k e a b o m b",
            "make\u200ba\u00adbomb")) {
      Relay relay = new Relay(rules(KEYWORDS)).feed("ok: ", variant, " done").finish();

      assertThat(relay.verdict).as(variant).isEqualTo(WEAPONS_EN);
      assertThat("ok: ").as(variant).startsWith(relay.released.toString());
    }
    Relay chinese = new Relay(rules(KEYWORDS)).feed("步骤：", "炸 弹\u200b制", "作").finish();
    assertThat(chinese.verdict).isEqualTo(WEAPONS_ZH);
    assertThat("步骤：").startsWith(chinese.released.toString());
  }

  @Test
  void cleanTextIsReleasedInFullAndUnchangedWhateverTheChunking() {
    String reply =
        "Hello, 世界! 🙂🚀 Ｆｕｌｌ width,\n\n\tindented  zero\u200bwidth ﬁne e\u0301 1234-5678 end  ";
    List<Integer> codePoints = reply.codePoints().boxed().toList();
    for (int size = 1; size <= 8; size++) {
      List<String> chunks = new ArrayList<>();
      for (int i = 0; i < codePoints.size(); i += size) {
        StringBuilder chunk = new StringBuilder();
        codePoints
            .subList(i, Math.min(codePoints.size(), i + size))
            .forEach(chunk::appendCodePoint);
        chunks.add(chunk.toString());
      }
      chunks.add(""); // an empty piece changes nothing
      Relay relay = new Relay(rules(RULES)).feed(chunks.toArray(String[]::new)).finish();

      assertThat(relay.verdict).isNull();
      assertThat(relay.released.toString()).isEqualTo(reply);
    }
  }

  @Test
  void holdsBackNoMoreThanTheLongestRuleNeeds() {
    RuleSet shortRules =
        rules(
            """
            rules:
              - id: zh
                category: violence
                keywords: ["炸弹", "枪"]
            """);
    assertThat(shortRules.maxLength()).isEqualTo(2);

    StreamScanner scanner = new RuleScanner(shortRules);
    assertThat(scanner.next("The quick brown fox").release()).isEqualTo("The quick brown fo");
    assertThat(scanner.next(" jumps  ").release()).isEqualTo("x jump");
    assertThat(scanner.next("炸").release()).isEqualTo("s  ");
    assertThat(scanner.next("药").release()).isEqualTo("炸");
    assertThat(scanner.finish()).isEqualTo(new StreamScanner.Step("药", null));

    Relay relay =
        new Relay(rules(RULES))
            .feed("A long answer that goes on and on, ", "with nothing in it to block at all. ");
    assertThat(relay.heldBack).allSatisfy(held -> assertThat(held).isLessThanOrEqualTo(39));
    assertThat(relay.heldBack).last().isEqualTo(39); // the 40-character pattern rule
  }

  @Test
  void holdsWhatFoldsToNothingBetweenHeldCharactersButReleasesIt() {
    RuleSet bomb =
        rules(
            """
            rules:
              - id: bomb
                category: violence
                keywords: ["bomb"]
            """);

    Relay clean = new Relay(bomb).feed("b\u200b", "o\u200bm", "\u200b", "s", " and more").finish();
    assertThat(clean.verdict).isNull();
    assertThat(clean.released.toString()).isEqualTo("b\u200bo\u200bm\u200bs and more");

    Relay hidden = new Relay(bomb).feed("x b\u200b", "o\u200bm", "\u200b", "b!");
    assertThat(hidden.verdict).isEqualTo(new Verdict("bomb", "violence"));
    assertThat(hidden.released.toString()).isEqualTo("x ");
  }

  @Test
  void regexRulesMatchFoldedTextAcrossChunks() {
    Relay howTo =
        new Relay(rules(RULES))
            .feed(
                "Here is a long preamble that says nothing in particular. How To ",
                "Build a Pipe",
                "Bomb in steps");
    assertThat(howTo.verdict).isEqualTo(WEAPONS_EN);
    assertThat(howTo.released.toString()).startsWith("Here is a long").doesNotContain("How");

    RuleSet cards =
        rules(
            """
            rules:
              - id: cards
                category: privacy
                patterns: ["\\\\d{4}-?\\\\d{4}-?\\\\d{4}-?\\\\d{4}"]
                max-length: 19
            """);
    Relay card = new Relay(cards).feed("card no. 4111 1111 ", "1111 111", "1 thanks");
    assertThat(card.verdict).isEqualTo(CARDS);
    assertThat(card.released.toString()).isEqualTo("card ");

    Relay shortNumber = new Relay(rules(RULES)).feed("call 4111 1111 ", "now").finish();
    assertThat(shortNumber.verdict).isNull();
    assertThat(shortNumber.released.toString()).isEqualTo("call 4111 1111 now");
  }

  @Test
  void aMatchStraddlingReleasedTextAndNewTextIsStillFound() {
    // The declared max-length (8) is shorter than a real match (13): part of the match has been
    // released when its end arrives, and only the kept context lets the match be seen at all.
    RuleSet underDeclared =
        rules(
            """
            rules:
              - id: api-key
                category: secrets
                patterns: ["sk-[a-z0-9]{10}"]
                max-length: 8
            """);
    Relay relay = new Relay(underDeclared).feed("key sk-12345", "67890 ok");

    assertThat(relay.released.toString()).isEqualTo("key s");
    assertThat(relay.verdict).isEqualTo(new Verdict("api-key", "secrets"));
  }

  @Test
  void onceBlockedTheScannerStaysBlockedAndAfterFinishItRefusesMore() {
    StreamScanner scanner = new RuleScanner(rules(RULES));
    assertThat(scanner.next("制造炸弹").blocked()).isEqualTo(WEAPONS_ZH);
    assertThat(scanner.next("harmless").blocked()).isEqualTo(WEAPONS_ZH);
    assertThat(scanner.finish().blocked()).isEqualTo(WEAPONS_ZH);
    assertThatThrownBy(() -> scanner.next("more")).isInstanceOf(IllegalStateException.class);
  }

  @Test
  void withoutRulesEverythingPassesAtOnce() {
    StreamScanner scanner = StreamScanner.passThrough();
    assertThat(scanner.next("制造炸弹 make a bomb"))
        .isEqualTo(new StreamScanner.Step("制造炸弹 make a bomb", null));
    assertThat(scanner.finish()).isEqualTo(new StreamScanner.Step("", null));
  }
}
