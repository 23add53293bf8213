package io.selfhosted.gateway.upstream;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;

class TokenEstimateTests {

  @Test
  void countsUtf8BytesAsTheEncoderDoes() {
    for (String text : List.of("", "hello", "你好,世界", "é ü", "emoji 😀 and 𠀀")) {
      assertThat(TokenEstimate.utf8Bytes(text))
          .as(text)
          .isEqualTo(text.getBytes(StandardCharsets.UTF_8).length);
    }
  }

  @Test
  void aPromptIsItsTextByThreePlusFourPerMessage() {
    List<ChatCall.Message> messages =
        List.of(new ChatCall.Message("system", "abc"), new ChatCall.Message("user", "你好"));
    assertThat(TokenEstimate.prompt(messages)).isEqualTo(4 + 1 + 4 + 2);
  }
}
