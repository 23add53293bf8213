package io.selfhosted.gateway.product;

import java.util.UUID;
import javax.sql.DataSource;
import org.junit.jupiter.api.condition.EnabledIfEnvironmentVariable;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.jdbc.datasource.DriverManagerDataSource;

/**
 * The repository and migrations on a real PostgreSQL server. scripts/test-java.sh (what `make test`
 * runs) always starts a throwaway server and sets GATEWAY_TEST_PG_URL, so these run there; a bare
 * `mvn test` without a server skips them rather than failing on a missing database.
 */
@EnabledIfEnvironmentVariable(named = "GATEWAY_TEST_PG_URL", matches = "jdbc:postgresql:.+")
class ConversationRepositoryPostgresTests extends ConversationRepositoryContract {

  @Override
  protected DataSource freshDatabase() {
    String url = System.getenv("GATEWAY_TEST_PG_URL");
    String user = System.getenv().getOrDefault("GATEWAY_TEST_PG_USER", "gateway");
    String password = System.getenv().getOrDefault("GATEWAY_TEST_PG_PASSWORD", "");
    // One schema per test keeps tests independent on one server.
    String schema = "t_" + UUID.randomUUID().toString().replace("-", "");
    JdbcClient.create(new DriverManagerDataSource(url, user, password))
        .sql("CREATE SCHEMA " + schema)
        .update();
    String separator = url.contains("?") ? "&" : "?";
    return new DriverManagerDataSource(url + separator + "currentSchema=" + schema, user, password);
  }
}
