package io.selfhosted.gateway.system;

import static org.springframework.test.web.servlet.request.MockMvcRequestBuilders.get;
import static org.springframework.test.web.servlet.request.MockMvcRequestBuilders.patch;
import static org.springframework.test.web.servlet.request.MockMvcRequestBuilders.post;
import static org.springframework.test.web.servlet.result.MockMvcResultMatchers.content;
import static org.springframework.test.web.servlet.result.MockMvcResultMatchers.jsonPath;
import static org.springframework.test.web.servlet.result.MockMvcResultMatchers.status;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.databind.ObjectMapper;
import jakarta.validation.Valid;
import jakarta.validation.constraints.Max;
import jakarta.validation.constraints.Min;
import jakarta.validation.constraints.NotNull;
import jakarta.validation.constraints.Size;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.springframework.http.MediaType;
import org.springframework.http.converter.StringHttpMessageConverter;
import org.springframework.http.converter.json.Jackson2ObjectMapperBuilder;
import org.springframework.http.converter.json.MappingJackson2HttpMessageConverter;
import org.springframework.lang.Nullable;
import org.springframework.test.web.servlet.MockMvc;
import org.springframework.test.web.servlet.ResultActions;
import org.springframework.test.web.servlet.setup.MockMvcBuilders;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PatchMapping;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.RequestBody;
import org.springframework.web.bind.annotation.RequestParam;
import org.springframework.web.bind.annotation.RestController;

/**
 * The request-body machinery that every {@link StrictJson} record gets, on a controller of its own:
 * what a client sees for each kind of bad body, and that unmarked bodies stay lenient.
 */
class StrictJsonTests {

  @StrictJson
  record Order(
      @NotNull(message = "is required") String name,
      @JsonProperty("max_items") @Min(value = 1, message = "must be at least 1") Integer maxItems,
      @Valid Line first,
      List<@Valid Line> lines) {}

  @JsonIgnoreProperties(ignoreUnknown = true)
  record Line(
      @JsonProperty("unit_price") @Min(value = 0, message = "must not be negative")
          Integer unitPrice) {}

  /** A change: each field left out (unchanged), null (cleared) or a value. */
  @StrictJson
  record Change(
      Optional<@Size(max = 3, message = "is longer than {max} characters") String> label,
      @JsonProperty("due_at") Optional<Instant> dueAt,
      Optional<List<@Valid Line>> lines) {}

  /** Not marked: bound by the application's usual, lenient mapper. */
  record Lenient(Integer count) {}

  @RestController
  static class Orders {
    @PostMapping("/orders")
    String create(@Valid @RequestBody Order order) {
      return "ok " + order.maxItems();
    }

    @PatchMapping("/orders")
    String change(@Valid @RequestBody Change change) {
      return state(change.label()) + " " + state(change.dueAt()) + " " + state(change.lines());
    }

    private static String state(@Nullable Optional<?> field) {
      return field == null ? "unchanged" : field.map(String::valueOf).orElse("cleared");
    }

    @PostMapping("/lenient")
    String lenient(@RequestBody Lenient body) {
      return "ok " + body.count();
    }

    @GetMapping("/orders")
    String list(@RequestParam(name = "page_size") @Max(100) int pageSize) {
      return "ok " + pageSize;
    }
  }

  private final ObjectMapper mapper = Jackson2ObjectMapperBuilder.json().build();
  private final MockMvc mvc =
      MockMvcBuilders.standaloneSetup(new Orders())
          .setControllerAdvice(new ErrorHandling(mapper))
          .setMessageConverters(
              new StringHttpMessageConverter(),
              new StrictJsonConverter(mapper),
              new MappingJackson2HttpMessageConverter(mapper))
          .build();

  private ResultActions send(String json) throws Exception {
    return mvc.perform(post("/orders").contentType(MediaType.APPLICATION_JSON).content(json));
  }

  private void refused(String json, String param, String message) throws Exception {
    send(json)
        .andExpect(status().isBadRequest())
        .andExpect(jsonPath("$.error.param").value(param))
        .andExpect(jsonPath("$.error.message").value(message))
        .andExpect(jsonPath("$.error.type").value("invalid_request_error"))
        .andExpect(jsonPath("$.error.code").value("invalid_request"));
  }

  @Test
  void bindsAWellFormedBody() throws Exception {
    send("{\"name\":\"a\",\"max_items\":3,\"lines\":[{\"unit_price\":1,\"colour\":\"red\"}]}")
        .andExpect(status().isOk())
        .andExpect(content().string("ok 3"));
  }

  @Test
  void refusesWhatJacksonWouldCoerce() throws Exception {
    refused(
        "{\"name\":\"a\",\"max_items\":\"3\"}", "max_items", "max_items must be a 32-bit integer");
    refused(
        "{\"name\":\"a\",\"max_items\":3.0}", "max_items", "max_items must be a 32-bit integer");
    refused("{\"name\":7}", "name", "name must be a string");
    refused("{\"name\":true}", "name", "name must be a string");
    refused(
        "{\"name\":\"a\",\"lines\":[{\"unit_price\":\"1\"}]}",
        "lines[0].unit_price",
        "lines[0].unit_price must be a 32-bit integer");
  }

  @Test
  void namesBrokenConstraintsByTheirWirePath() throws Exception {
    refused("{}", "name", "name is required");
    refused("{\"name\":\"a\",\"max_items\":0}", "max_items", "max_items must be at least 1");
    refused(
        "{\"name\":\"a\",\"first\":{\"unit_price\":-1}}",
        "first.unit_price",
        "first.unit_price must not be negative");
    refused(
        "{\"name\":\"a\",\"lines\":[{\"unit_price\":1},{\"unit_price\":-1}]}",
        "lines[1].unit_price",
        "lines[1].unit_price must not be negative");
  }

  @Test
  void reportsTheFirstFieldInDeclarationOrder() throws Exception {
    refused("{\"max_items\":0,\"first\":{\"unit_price\":-1}}", "name", "name is required");
  }

  @Test
  void refusesUnknownFieldsUnlessTheTypeIgnoresThem() throws Exception {
    refused(
        "{\"name\":\"a\",\"colour\":\"red\"}",
        "colour",
        "unknown field colour; allowed: first, lines, max_items, name");
  }

  @Test
  void refusesBodiesThatAreNotObjectsOrNotJson() throws Exception {
    for (String json : new String[] {"[1]", "\"a\"", "3"}) {
      send(json)
          .andExpect(status().isBadRequest())
          .andExpect(jsonPath("$.error.param").isEmpty())
          .andExpect(jsonPath("$.error.message").value("request body must be a JSON object"));
    }
    for (String json : new String[] {"{\"name\":", "{name:1}", "{\"lines\":[{\"unit_price\":1}"}) {
      send(json)
          .andExpect(status().isBadRequest())
          .andExpect(jsonPath("$.error.param").isEmpty())
          .andExpect(
              jsonPath("$.error.message")
                  .value("request body is not valid JSON (or not valid UTF-8)"));
    }
  }

  private ResultActions change(String json) throws Exception {
    return mvc.perform(patch("/orders").contentType(MediaType.APPLICATION_JSON).content(json));
  }

  @Test
  void anOptionalFieldTellsLeftOutFromNull() throws Exception {
    change("{}").andExpect(content().string("unchanged unchanged unchanged"));
    change("{\"label\":null,\"due_at\":null,\"lines\":null}")
        .andExpect(content().string("cleared cleared cleared"));
    change("{\"label\":\"abc\",\"due_at\":\"2030-01-01T00:00:00Z\",\"lines\":[]}")
        .andExpect(content().string("abc 2030-01-01T00:00:00Z []"));
  }

  @Test
  void checksAndNamesWhatAnOptionalFieldHolds() throws Exception {
    change("{\"label\":\"abcd\"}")
        .andExpect(status().isBadRequest())
        .andExpect(jsonPath("$.error.param").value("label"))
        .andExpect(jsonPath("$.error.message").value("label is longer than 3 characters"));
    change("{\"lines\":[{\"unit_price\":1},{\"unit_price\":-1}]}")
        .andExpect(status().isBadRequest())
        .andExpect(jsonPath("$.error.param").value("lines[1].unit_price"))
        .andExpect(jsonPath("$.error.message").value("lines[1].unit_price must not be negative"));
  }

  @Test
  void readsAnInstantFromIsoTextOnly() throws Exception {
    for (String dueAt : new String[] {"1893456000", "1.5", "\"\"", "\"tomorrow\"", "true"}) {
      change("{\"due_at\":" + dueAt + "}")
          .andExpect(status().isBadRequest())
          .andExpect(jsonPath("$.error.param").value("due_at"))
          .andExpect(
              jsonPath("$.error.message").value("due_at must be an ISO-8601 date-time string"));
    }
    change("{\"due_at\":\"2030-01-01T01:00:00+01:00\"}")
        .andExpect(content().string("unchanged 2030-01-01T00:00:00Z unchanged"));
  }

  @Test
  void leavesUnmarkedBodiesToTheLenientMapper() throws Exception {
    mvc.perform(
            post("/lenient").contentType(MediaType.APPLICATION_JSON).content("{\"count\":\"5\"}"))
        .andExpect(status().isOk())
        .andExpect(content().string("ok 5"));
  }

  @Test
  void namesAConstrainedRequestParameter() throws Exception {
    mvc.perform(get("/orders").param("page_size", "500"))
        .andExpect(status().isBadRequest())
        .andExpect(jsonPath("$.error.param").value("page_size"));
  }
}
