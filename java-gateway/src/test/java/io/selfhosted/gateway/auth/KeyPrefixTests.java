package io.selfhosted.gateway.auth;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

/**
 * The prefix that key lists show: enough to tell keys apart, little of any key. The lead {@code
 * sk-} and at most 4 characters after it, never more than a quarter of the key.
 */
class KeyPrefixTests {

  @Test
  void aGeneratedKeyShowsItsLeadAndFourCharacters() {
    String generated = "sk-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefg"; // sk- and 43, as issued
    assertThat(ApiKeyService.visiblePrefix(generated)).isEqualTo("sk-AbCd");
  }

  @Test
  void aShortHandPickedKeyShowsAtMostAQuarterOfItself() {
    assertThat(ApiKeyService.visiblePrefix("sk-admin-secret-key-2025-prod")).isEqualTo("sk-admi");
    assertThat(ApiKeyService.visiblePrefix("sk-admin-secret-key-2025")).isEqualTo("sk-adm");
    assertThat(ApiKeyService.visiblePrefix("sk-admin-test-key")).isEqualTo("sk-a");
    assertThat(ApiKeyService.visiblePrefix("test-admin-key")).isEqualTo("tes");
    assertThat(ApiKeyService.visiblePrefix("changeme")).isEqualTo("ch");
    assertThat(ApiKeyService.visiblePrefix("abc")).isEmpty();
  }

  @Test
  void noKeyOfAnyLengthShowsMoreThanTheRuleAllows() {
    StringBuilder key = new StringBuilder();
    for (int length = 0; length <= 300; length++) {
      for (String lead : new String[] {"", "sk-"}) {
        String secret = lead + key;
        String prefix = ApiKeyService.visiblePrefix(secret);
        assertThat(secret).startsWith(prefix);
        assertThat(prefix.length()).as(secret).isLessThanOrEqualTo(secret.length() / 4);
        assertThat(prefix.length() - lead.length()).as(secret).isLessThanOrEqualTo(4);
      }
      key.append((char) ('a' + length % 26));
    }
  }
}
