package io.selfhosted.gateway.auth;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.stream.Stream;
import javax.sql.DataSource;
import org.flywaydb.core.Flyway;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.jdbc.datasource.DriverManagerDataSource;

/**
 * A key's models as stored, on H2 and, when GATEWAY_TEST_PG_URL names a server
 * (scripts/test-java.sh and harness.services start one), on PostgreSQL: every model, some, and none
 * read back as they were written, and rows written before "none" existed keep their meaning.
 */
class ApiKeyRepositoryTests {

  static Stream<Arguments> databases() {
    List<Arguments> databases = new ArrayList<>();
    databases.add(
        Arguments.of(
            "H2",
            new DriverManagerDataSource(
                "jdbc:h2:mem:keys-" + UUID.randomUUID() + ";DB_CLOSE_DELAY=-1", "sa", "")));
    String url = System.getenv("GATEWAY_TEST_PG_URL");
    if (url != null && url.startsWith("jdbc:postgresql:")) {
      String user = System.getenv().getOrDefault("GATEWAY_TEST_PG_USER", "gateway");
      String password = System.getenv().getOrDefault("GATEWAY_TEST_PG_PASSWORD", "");
      // A schema of its own keeps this test apart from the others on the same server.
      String schema = "k_" + UUID.randomUUID().toString().replace("-", "");
      JdbcClient.create(new DriverManagerDataSource(url, user, password))
          .sql("CREATE SCHEMA " + schema)
          .update();
      String separator = url.contains("?") ? "&" : "?";
      databases.add(
          Arguments.of(
              "PostgreSQL",
              new DriverManagerDataSource(
                  url + separator + "currentSchema=" + schema, user, password)));
    }
    return databases.stream();
  }

  private static ApiKey key(String id, AllowedModels models) {
    return new ApiKey(
        id,
        id,
        Caller.Role.USER,
        "sk-" + id,
        models,
        KeyLimits.NONE,
        null,
        Instant.now().truncatedTo(ChronoUnit.MILLIS),
        null,
        null);
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("databases")
  void everySomeAndNoModelReadBackAsWritten(String name, DataSource database) {
    Flyway.configure().dataSource(database).locations("classpath:db/migration").load().migrate();
    JdbcClient jdbc = JdbcClient.create(database);
    ApiKeyRepository keys = new ApiKeyRepository(jdbc);

    keys.insert(key("all", AllowedModels.ALL), "hash-all");
    keys.insert(key("some", AllowedModels.only(List.of("b", "a"))), "hash-some");
    keys.insert(key("none", AllowedModels.only(List.of())), "hash-none");
    // As every earlier gateway stored an unrestricted key.
    keys.insert(key("older", AllowedModels.only(List.of("a"))), "hash-older");
    jdbc.sql("UPDATE api_keys SET models = NULL WHERE id = 'older'").update();

    assertThat(keys.findById("all").orElseThrow().models()).isEqualTo(AllowedModels.ALL);
    assertThat(keys.findById("some").orElseThrow().models().toList()).containsExactly("b", "a");
    assertThat(keys.findById("none").orElseThrow().models().none()).isTrue();
    assertThat(keys.findById("older").orElseThrow().models()).isEqualTo(AllowedModels.ALL);

    keys.update(key("none", AllowedModels.ALL));
    assertThat(keys.findById("none").orElseThrow().models()).isEqualTo(AllowedModels.ALL);
    keys.update(key("all", AllowedModels.only(List.of())));
    assertThat(keys.findByHash("hash-all").orElseThrow().models().none()).isTrue();
  }
}
