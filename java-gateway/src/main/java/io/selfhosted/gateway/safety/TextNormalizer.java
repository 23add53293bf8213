package io.selfhosted.gateway.safety;

import java.text.Normalizer;
import java.util.Arrays;
import java.util.Locale;

/**
 * Folds text so that spacing, invisible characters, case and full-width forms cannot hide a match:
 * {@code "Ｂ Ｏ Ｍ Ｂ"}, {@code "b\u200bomb"} and {@code "BoMb"} all become {@code "bomb"}, and {@code
 * "炸 弹"} becomes {@code "炸弹"}. Rules and scanned text go through the same folding.
 *
 * <p>Each code point is folded on its own: NFKC of that one code point, then lower case with {@link
 * Locale#ROOT}; whitespace, space separators, control characters and format characters (zero-width
 * space and joiners U+200B..U+200D, word joiner U+2060, BOM U+FEFF, soft hyphen U+00AD and every
 * other {@link Character#FORMAT}) are dropped. Folding per code point, rather than the whole
 * string, keeps the result independent of where a stream is cut into chunks, at the price of not
 * composing a base letter with a separate combining accent ({@code "e\u0301"} stays two
 * characters).
 */
public final class TextNormalizer {

  private TextNormalizer() {}

  /** Folded text, with the original index each of its characters came from. */
  public static Normalized normalize(CharSequence original) {
    int length = original.length();
    StringBuilder out = new StringBuilder(length);
    int[] origins = new int[length];
    int count = 0;
    for (int i = 0; i < length; ) {
      int cp = Character.codePointAt(original, i);
      if (cp < 0x80) {
        if (!isIgnorable(cp)) {
          origins = ensure(origins, count + 1);
          origins[count++] = i;
          out.append((char) (cp >= 'A' && cp <= 'Z' ? cp + ('a' - 'A') : cp));
        }
      } else if (!isIgnorable(cp)) {
        String folded =
            Normalizer.normalize(Character.toString(cp), Normalizer.Form.NFKC)
                .toLowerCase(Locale.ROOT);
        for (int j = 0; j < folded.length(); ) {
          int part = folded.codePointAt(j);
          int width = Character.charCount(part);
          if (!isIgnorable(part)) {
            origins = ensure(origins, count + width);
            for (int k = 0; k < width; k++) {
              origins[count++] = i;
            }
            out.appendCodePoint(part);
          }
          j += width;
        }
      }
      i += Character.charCount(cp);
    }
    return new Normalized(out.toString(), origins, count);
  }

  /** Folded text alone, for rules and whole-text checks. */
  public static String fold(CharSequence original) {
    return normalize(original).text();
  }

  private static boolean isIgnorable(int cp) {
    if (Character.isWhitespace(cp) || Character.isSpaceChar(cp)) {
      return true;
    }
    int type = Character.getType(cp);
    return type == Character.FORMAT || type == Character.CONTROL;
  }

  private static int[] ensure(int[] origins, int size) {
    return size <= origins.length
        ? origins
        : Arrays.copyOf(origins, Math.max(size, origins.length * 2));
  }

  /** Folded text plus, for each of its characters, where its code point starts in the original. */
  public static final class Normalized {

    private final String text;
    private final int[] origins;

    private Normalized(String text, int[] origins, int count) {
      this.text = text;
      this.origins = origins.length == count ? origins : Arrays.copyOf(origins, count);
    }

    public String text() {
      return text;
    }

    public int length() {
      return text.length();
    }

    /**
     * The index in the original text of the code point that produced folded character {@code
     * index}; non-decreasing, and equal for all characters one code point expands to.
     */
    public int origin(int index) {
      return origins[index];
    }
  }
}
