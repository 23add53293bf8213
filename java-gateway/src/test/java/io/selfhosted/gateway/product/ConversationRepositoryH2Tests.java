package io.selfhosted.gateway.product;

import java.util.UUID;
import javax.sql.DataSource;
import org.springframework.jdbc.datasource.DriverManagerDataSource;

/** The repository on the embedded default database. */
class ConversationRepositoryH2Tests extends ConversationRepositoryContract {

  @Override
  protected DataSource freshDatabase() {
    return new DriverManagerDataSource(
        "jdbc:h2:mem:" + UUID.randomUUID() + ";DB_CLOSE_DELAY=-1", "sa", "");
  }
}
