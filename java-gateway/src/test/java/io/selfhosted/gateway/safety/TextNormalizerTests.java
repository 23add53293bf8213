package io.selfhosted.gateway.safety;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

/** Folding hides no banned word behind spacing, invisible characters, case or width. */
class TextNormalizerTests {

  @Test
  void foldsFullWidthSpacedZeroWidthAndMixedCaseVariantsToOneForm() {
    assertThat(TextNormalizer.fold("Ｂ Ｏ Ｍ Ｂ")).isEqualTo("bomb");
    assertThat(TextNormalizer.fold("b\u200bomb")).isEqualTo("bomb");
    assertThat(TextNormalizer.fold("b\u200co\u200dm\u2060b\uFEFF")).isEqualTo("bomb");
    assertThat(TextNormalizer.fold("bo\u00ADmb")).isEqualTo("bomb");
    assertThat(TextNormalizer.fold("BoMb")).isEqualTo("bomb");
    assertThat(TextNormalizer.fold("b\to\nm\u3000b\u00A0")).isEqualTo("bomb");
  }

  @Test
  void foldsChineseSpacedAndFullWidthSpaced() {
    assertThat(TextNormalizer.fold("炸 弹")).isEqualTo("炸弹");
    assertThat(TextNormalizer.fold("炸\u3000\u200b弹")).isEqualTo("炸弹");
  }

  @Test
  void mapsEveryFoldedCharacterBackToTheStartOfItsCodePoint() {
    String original = "A 😀\u200bｂ\uFB01"; // ﬁ ligature folds to two characters
    TextNormalizer.Normalized folded = TextNormalizer.normalize(original);

    assertThat(folded.text()).isEqualTo("a😀bfi");
    assertThat(folded.origin(0)).isEqualTo(0); // a
    assertThat(folded.origin(1)).isEqualTo(2); // high surrogate of the emoji
    assertThat(folded.origin(2)).isEqualTo(2); // low surrogate, same code point
    assertThat(folded.origin(3)).isEqualTo(5); // ｂ, after the zero-width space
    assertThat(folded.origin(4)).isEqualTo(6); // f of the ligature
    assertThat(folded.origin(5)).isEqualTo(6); // i of the ligature
  }

  @Test
  void foldsEachCodePointOnItsOwnSoChunkingDoesNotMatter() {
    String text = "Ｈｅｌｌｏ, 世界! e\u0301 ﬁne";
    for (int cut = 0; cut <= text.length(); cut++) {
      assertThat(
              TextNormalizer.fold(text.substring(0, cut))
                  + TextNormalizer.fold(text.substring(cut)))
          .isEqualTo(TextNormalizer.fold(text));
    }
  }
}
