package io.selfhosted.gateway.safety;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.TextNode;
import java.util.List;
import org.junit.jupiter.api.Test;

class HeldLogprobsTests {

  private static List<JsonNode> entries(String... tokens) {
    return java.util.Arrays.stream(tokens).map(t -> (JsonNode) TextNode.valueOf(t)).toList();
  }

  @Test
  void entriesGoOutWithTheReleaseThatCompletesTheirText() {
    HeldLogprobs held = new HeldLogprobs();
    // "abcdef" arrives, "ab" is released: its entries wait for the rest of their text.
    HeldLogprobs.Release first = held.next("abcdef", entries("abc", "def"), 2, true);
    assertThat(first.entries()).isEmpty();
    assertThat(first.ownOnly()).isFalse();
    // "gh" arrives and "cdefg" goes out: the first chunk's entries, not yet the second's.
    HeldLogprobs.Release second = held.next("gh", entries("gh"), 5, true);
    assertThat(second.entries()).containsExactlyElementsOf(entries("abc", "def"));
    assertThat(second.ownOnly()).isFalse();
    assertThat(held.finish()).containsExactlyElementsOf(entries("gh"));
    assertThat(held.finish()).isEmpty();
  }

  @Test
  void aChunkReleasedWholeKeepsItsOwnEntries() {
    HeldLogprobs held = new HeldLogprobs();
    HeldLogprobs.Release release = held.next("abc", entries("abc"), 3, true);
    assertThat(release.ownOnly()).isTrue();
    assertThat(release.entries()).containsExactlyElementsOf(entries("abc"));
    assertThat(held.next("", List.of(), 0, true).ownOnly()).isTrue();
  }

  @Test
  void entriesOfTextWithNoCharactersWaitForTheTextBeforeThem() {
    HeldLogprobs held = new HeldLogprobs();
    held.next("abc", entries("abc"), 1, true);
    HeldLogprobs.Release empty = held.next("", entries("\\xe4"), 0, true);
    assertThat(empty.entries()).isEmpty();
    HeldLogprobs.Release rest = held.next("", List.of(), 2, true);
    assertThat(rest.entries()).containsExactlyElementsOf(entries("abc", "\\xe4"));
  }

  @Test
  void aChunkWithoutAChoiceCarriesNothing() {
    HeldLogprobs held = new HeldLogprobs();
    held.next("abc", entries("abc"), 0, true);
    HeldLogprobs.Release usage = held.next("", List.of(), 3, false);
    assertThat(usage.entries()).isEmpty();
    assertThat(usage.ownOnly()).isTrue();
    assertThat(held.finish()).containsExactlyElementsOf(entries("abc"));
  }
}
