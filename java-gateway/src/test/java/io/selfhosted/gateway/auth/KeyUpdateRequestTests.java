package io.selfhosted.gateway.auth;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.selfhosted.gateway.system.StrictJsonConverter;
import java.time.Instant;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.springframework.http.converter.json.Jackson2ObjectMapperBuilder;

/** A key PATCH changes what it names: a field left out stays, null clears it, a value sets it. */
class KeyUpdateRequestTests {

  private static final ObjectMapper STRICT =
      StrictJsonConverter.strict(Jackson2ObjectMapperBuilder.json().build());
  private static final Instant CREATED = Instant.parse("2026-01-01T00:00:00Z");
  private static final Instant EXPIRES = Instant.parse("2099-01-01T00:00:00Z");
  private static final ApiKey KEY =
      new ApiKey(
          "k1",
          "billing",
          Caller.Role.USER,
          "sk-abcd",
          AllowedModels.only(List.of("demo-model")),
          new KeyLimits(30, null, null, 1000L, null),
          EXPIRES,
          CREATED,
          null,
          null);

  private static ApiKey patched(String json) throws Exception {
    return STRICT.readValue(json, KeyUpdateRequest.class).applyTo(KEY);
  }

  @Test
  void aFieldLeftOutStaysAsItIs() throws Exception {
    assertThat(patched("{}")).isEqualTo(KEY);
    assertThat(patched("{\"name\":\"  renamed \"}"))
        .isEqualTo(
            new ApiKey(
                "k1",
                "renamed",
                Caller.Role.USER,
                "sk-abcd",
                KEY.models(),
                KEY.limits(),
                EXPIRES,
                CREATED,
                null,
                null));
  }

  @Test
  void nullGivesEveryModelNoLimitsAndNoExpiry() throws Exception {
    ApiKey cleared = patched("{\"models\":null,\"limits\":null,\"expiresAt\":null}");

    assertThat(cleared.models().all()).isTrue();
    assertThat(cleared.limits()).isEqualTo(KeyLimits.NONE);
    assertThat(cleared.expiresAt()).isNull();
    assertThat(cleared.name()).isEqualTo("billing");
  }

  @Test
  void aValueReplacesTheFieldAndAnEmptyListAllowsNoModel() throws Exception {
    ApiKey changed =
        patched(
            "{\"models\":[],\"limits\":{\"tokensPerMinute\":5},"
                + "\"expiresAt\":\"2098-01-01T00:00:00Z\"}");

    assertThat(changed.models().none()).isTrue();
    assertThat(changed.limits()).isEqualTo(new KeyLimits(null, 5, null, null, null));
    assertThat(changed.expiresAt()).isEqualTo(Instant.parse("2098-01-01T00:00:00Z"));
  }

  @Test
  void onlyASentListOfModelsIsCheckedForUnknownNames() throws Exception {
    assertThat(STRICT.readValue("{}", KeyUpdateRequest.class).namedModels()).isNull();
    assertThat(STRICT.readValue("{\"models\":null}", KeyUpdateRequest.class).namedModels())
        .isNull();
    assertThat(STRICT.readValue("{\"models\":[\"a\"]}", KeyUpdateRequest.class).namedModels())
        .containsExactly("a");
  }
}
