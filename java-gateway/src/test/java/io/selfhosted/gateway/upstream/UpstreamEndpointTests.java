package io.selfhosted.gateway.upstream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.selfhosted.gateway.support.TestProperties;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

/** GATEWAY_UPSTREAMS entries and structured endpoints: engines, their defaults, bad settings. */
class UpstreamEndpointTests {

  private static final ChatCall CALL =
      new ChatCall(
          "demo-model",
          List.of(new ChatCall.Message("user", "hi")),
          16,
          0.0,
          1.0,
          List.of("\n\n"),
          7L,
          true);

  @Test
  void aPlainUrlIsOurOwnModelService() {
    UpstreamEndpoint endpoint = UpstreamEndpoint.parse(" http://model:8000 ");
    assertThat(endpoint.engine()).isEqualTo(UpstreamEngine.OURS);
    assertThat(endpoint.readyPath()).isEqualTo("/ready");
    assertThat(endpoint.model()).isNull();
    assertThat(endpoint.token()).isNull();
    assertThat(endpoint.discovers()).isTrue();
  }

  @Test
  void everyEngineHasAWorkingReadinessDefault() {
    assertThat(UpstreamEndpoint.parse("http://a:1#engine=vllm").readyPath()).isEqualTo("/health");
    assertThat(UpstreamEndpoint.parse("http://a:1#engine=sglang").readyPath()).isEqualTo("/health");
    assertThat(UpstreamEndpoint.parse("http://a:1#engine=tgi").readyPath()).isEqualTo("/health");
    assertThat(UpstreamEndpoint.parse("http://a:1#engine=transformers-serve").engine())
        .isEqualTo(UpstreamEngine.TRANSFORMERS);
    assertThat(UpstreamEndpoint.parse("http://a:1#engine=transformers").readyPath())
        .isEqualTo("/health");
    assertThat(UpstreamEndpoint.parse("http://a:1#engine=openai").readyPath())
        .isEqualTo("/v1/models");
  }

  @Test
  void settingsAfterTheHashOverrideTheEngineDefaults() {
    UpstreamEndpoint endpoint =
        UpstreamEndpoint.parse(
            "http://vllm:8000#engine=VLLM&model=Qwen/Qwen2.5-72B-Instruct&ready-path=/ping"
                + "&token=s3cret%26x&resolve=false");
    assertThat(endpoint.engine()).isEqualTo(UpstreamEngine.VLLM);
    assertThat(endpoint.model()).isEqualTo("Qwen/Qwen2.5-72B-Instruct");
    assertThat(endpoint.readyPath()).isEqualTo("/ping");
    assertThat(endpoint.token()).isEqualTo("s3cret&x");
    assertThat(endpoint.discovers()).isFalse();
    assertThat(endpoint.displayUrl()).isEqualTo("http://vllm:8000");
    assertThat(endpoint.toString())
        .as("safe to log")
        .doesNotContain("s3cret")
        .contains("vllm:8000");
  }

  @Test
  void addressesAndLocalhostAreOneReplicaEach() {
    assertThat(UpstreamEndpoint.parse("http://127.0.0.1:8000").discovers()).isFalse();
    assertThat(UpstreamEndpoint.parse("http://[::1]:8000").discovers()).isFalse();
    assertThat(UpstreamEndpoint.parse("http://localhost:8000").discovers()).isFalse();
  }

  @Test
  void wrongSettingsFailAtStartWithoutShowingTheToken() {
    assertThatThrownBy(() -> UpstreamEndpoint.parse("http://a:1#engine=llamafile&token=s3cret"))
        .hasMessageContaining("unknown upstream engine 'llamafile'")
        .hasMessageContaining("vllm")
        .hasMessageNotContaining("s3cret");
    assertThatThrownBy(() -> UpstreamEndpoint.parse("http://a:1#token=s3cret&modle=x"))
        .hasMessageContaining("unknown setting 'modle'")
        .hasMessageNotContaining("s3cret");
    assertThatThrownBy(() -> UpstreamEndpoint.parse("http://a:1#ready-path=health"))
        .hasMessageContaining("ready-path must be a path starting with '/'");
    assertThatThrownBy(() -> UpstreamEndpoint.parse("http://a:1#resolve=yes"))
        .hasMessageContaining("resolve must be true or false");
    assertThatThrownBy(() -> UpstreamEndpoint.parse("ftp://a:1"))
        .hasMessageContaining("not an http(s) URL");
    assertThatThrownBy(() -> UpstreamEndpoint.parse("http://a:1?engine=vllm"))
        .hasMessageContaining("settings go after '#'");
  }

  @Test
  void structuredEndpointsAreValidatedWithTheirIndexWhenBound() {
    assertThatThrownBy(
            () ->
                new UpstreamProperties(
                    List.of(),
                    List.of(
                        new UpstreamProperties.Endpoint(
                            "http://vllm:8000", "vllm", null, "m", null, null),
                        new UpstreamProperties.Endpoint(
                            "http://x:1", "nope", null, null, null, null)),
                    "",
                    Duration.ofSeconds(1),
                    Duration.ofSeconds(1),
                    Duration.ofSeconds(1),
                    Duration.ofSeconds(1),
                    10))
        .hasMessageStartingWith("gateway.upstream.endpoints[1]: invalid upstream x:1");
  }

  @Test
  void nothingConfiguredMeansTheLocalModelService() {
    List<UpstreamEndpoint> endpoints =
        TestProperties.upstreams(List.of(" "), Duration.ofSeconds(1)).parsedEndpoints();
    assertThat(endpoints)
        .singleElement()
        .extracting(UpstreamEndpoint::displayUrl)
        .isEqualTo("http://127.0.0.1:8000");
  }

  @Test
  void aZeroResolveIntervalIsRefused() {
    assertThatThrownBy(
            () ->
                new UpstreamProperties(
                    List.of(),
                    List.of(),
                    "",
                    Duration.ofSeconds(1),
                    Duration.ofSeconds(1),
                    Duration.ofSeconds(1),
                    Duration.ZERO,
                    10))
        .hasMessageContaining("gateway.upstream.resolve-interval must be a positive duration");
  }

  @Test
  void otherEnginesGetTheirOwnModelNameAndOnlyStandardFields() throws Exception {
    UpstreamWire wire = new UpstreamWire(new ObjectMapper());
    JsonNode ours =
        new ObjectMapper().readTree(wire.body(CALL, true, UpstreamEndpoint.parse("http://a:1")));
    assertThat(ours.path("model").asText()).isEqualTo("demo-model");
    assertThat(ours.path("ignore_eos").asBoolean()).isTrue();

    JsonNode vllm =
        new ObjectMapper()
            .readTree(
                wire.body(CALL, true, UpstreamEndpoint.parse("http://a:1#engine=vllm&model=Qwen")));
    assertThat(vllm.path("model").asText()).isEqualTo("Qwen");
    List<String> fields = new java.util.ArrayList<>();
    vllm.fieldNames().forEachRemaining(fields::add);
    assertThat(fields)
        .containsExactlyInAnyOrder(
            "model",
            "messages",
            "stream",
            "stream_options",
            "max_tokens",
            "temperature",
            "top_p",
            "stop",
            "seed");
  }
}
