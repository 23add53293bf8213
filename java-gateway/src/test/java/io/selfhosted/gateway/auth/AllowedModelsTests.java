package io.selfhosted.gateway.auth;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.selfhosted.gateway.pipeline.Exchange;
import io.selfhosted.gateway.support.Json;
import io.selfhosted.gateway.system.ApiException;
import io.selfhosted.gateway.upstream.ChatCall;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Which models a key may call: every one (absent or null), exactly those listed, or none ([]). */
class AllowedModelsTests {

  @Test
  void everyModelIsAllowedWithoutAListAndShownAsNull() throws Exception {
    assertThat(AllowedModels.ALL.allows("demo-model")).isTrue();
    assertThat(AllowedModels.ALL.allows("added-later")).isTrue();
    assertThat(Json.MAPPER.writeValueAsString(AllowedModels.ALL)).isEqualTo("null");
  }

  @Test
  void anEmptyListAllowsNoModelAndIsShownAsAnEmptyList() throws Exception {
    AllowedModels none = AllowedModels.only(List.of());

    assertThat(none.allows("demo-model")).isFalse();
    assertThat(none.none()).isTrue();
    assertThat(none.all()).isFalse();
    assertThat(Json.MAPPER.writeValueAsString(none)).isEqualTo("[]");
  }

  @Test
  void aListAllowsExactlyItsModelsInTheOrderGiven() throws Exception {
    AllowedModels some = AllowedModels.only(List.of("second-model", "demo-model"));

    assertThat(some.allows("demo-model")).isTrue();
    assertThat(some.allows("third-model")).isFalse();
    assertThat(Json.MAPPER.writeValueAsString(some)).isEqualTo("[\"second-model\",\"demo-model\"]");
  }

  @Test
  void admissionRefusesAKeyWithNoModelsAndSaysWhy() {
    Caller blocked =
        new Caller("k", "blocked", Caller.Role.USER, AllowedModels.only(List.of()), null);
    Exchange exchange =
        new Exchange(
            "r",
            blocked,
            "demo-model",
            "test",
            true,
            new ChatCall("demo-model", List.of(), 1, 0, 1, List.of(), null, null),
            System.nanoTime());

    assertThatThrownBy(() -> new ModelAccess().admit(exchange))
        .isInstanceOfSatisfying(
            ApiException.class,
            e -> {
              assertThat(e.status().value()).isEqualTo(403);
              assertThat(e.code()).isEqualTo("model_not_allowed");
              assertThat(e.getMessage()).contains("no model");
            });
  }

  @Test
  void aCallerCannotBeMadeWithoutSayingWhichModels() {
    assertThatThrownBy(() -> new Caller("k", "k", Caller.Role.USER, null, null))
        .isInstanceOf(NullPointerException.class);
  }
}
