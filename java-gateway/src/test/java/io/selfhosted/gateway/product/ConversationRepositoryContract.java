package io.selfhosted.gateway.product;

import static org.assertj.core.api.Assertions.assertThat;

import io.selfhosted.gateway.product.ConversationRepository.Conversation;
import io.selfhosted.gateway.product.ConversationRepository.Message;
import io.selfhosted.gateway.stream.LocalStreamStore;
import io.selfhosted.gateway.stream.StreamProperties;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.util.List;
import javax.sql.DataSource;
import org.flywaydb.core.Flyway;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.springframework.jdbc.core.simple.JdbcClient;

/** What the repository and the migrations must do on every supported database. */
abstract class ConversationRepositoryContract {

  protected ConversationRepository repository;

  /** A fresh, empty database (or schema) for one test. */
  private static final String OWNER = "key-1";

  protected abstract DataSource freshDatabase();

  @BeforeEach
  void migrate() {
    DataSource dataSource = freshDatabase();
    Flyway.configure().dataSource(dataSource).locations("classpath:db/migration").load().migrate();
    repository = new ConversationRepository(JdbcClient.create(dataSource));
  }

  @Test
  void storesConversationsAndListsTheMostRecentFirst() {
    Conversation older = repository.createConversation(OWNER, null);
    Conversation newer = repository.createConversation(OWNER, "named");
    repository.insertMessage(older.id(), "user", "wake up", ConversationRepository.COMPLETE, "m");

    List<Conversation> listed = repository.listConversations(OWNER, 10);

    assertThat(listed).extracting(Conversation::id).containsExactly(older.id(), newer.id());
    assertThat(listed.get(0).title()).as("titled by its first query").isEqualTo("wake up");
    assertThat(repository.findConversation(OWNER, newer.id()).orElseThrow().title())
        .isEqualTo("named");
    assertThat(repository.findConversation(OWNER, "missing")).isEmpty();
  }

  @Test
  void showsAConversationOnlyToTheKeyThatOwnsIt() {
    Conversation mine = repository.createConversation(OWNER, "mine");
    Message answer =
        repository.insertMessage(mine.id(), "assistant", "", ConversationRepository.STREAMING, "m");

    assertThat(repository.listConversations("other-key", 10)).isEmpty();
    assertThat(repository.findConversation("other-key", mine.id())).isEmpty();
    assertThat(repository.findMessage("other-key", answer.id())).isEmpty();
    assertThat(repository.listConversations(OWNER, 10)).hasSize(1);
  }

  @Test
  void keepsMessagesInOrderWithTheirFinalState() {
    String conversation = repository.createConversation(OWNER, null).id();
    repository.insertMessage(conversation, "user", "你好", ConversationRepository.COMPLETE, "m");
    Message answer =
        repository.insertMessage(
            conversation, "assistant", "", ConversationRepository.STREAMING, "m");

    String text = "你好!我是人工智能助手,很高兴见到你。" + "x".repeat(20_000);
    repository.finishMessage(
        answer.id(), text, ConversationRepository.COMPLETE, "stop", 5, 42, null);

    List<Message> messages = repository.listMessages(conversation);
    assertThat(messages).extracting(Message::role).containsExactly("user", "assistant");
    Message stored = messages.get(1);
    assertThat(stored.content()).isEqualTo(text);
    assertThat(stored.status()).isEqualTo("complete");
    assertThat(stored.finishReason()).isEqualTo("stop");
    assertThat(stored.promptTokens()).isEqualTo(5);
    assertThat(stored.completionTokens()).isEqualTo(42);
    assertThat(repository.findMessage(OWNER, answer.id()).orElseThrow().conversationId())
        .isEqualTo(conversation);
  }

  @Test
  void storesACancelledAnswerWithItsPartialTextAndNoUsage() {
    String conversation = repository.createConversation(OWNER, null).id();
    Message answer =
        repository.insertMessage(
            conversation, "assistant", "", ConversationRepository.STREAMING, "m");

    repository.finishMessage(
        answer.id(),
        "partial",
        ConversationRepository.CANCELLED,
        "cancelled",
        null,
        null,
        "replica_failover");

    Message stored = repository.findMessage(OWNER, answer.id()).orElseThrow();
    assertThat(stored.degraded()).isEqualTo("replica_failover");
    assertThat(stored.status()).isEqualTo("cancelled");
    assertThat(stored.content()).isEqualTo("partial");
    assertThat(stored.completionTokens()).isNull();
  }

  @Test
  void sweepsOnlyStreamingAnswersWhoseLeaseRanOut() {
    String conversation = repository.createConversation(OWNER, null).id();
    Instant start = Instant.now();
    Message alive =
        repository.insertStreamingAnswer(conversation, "m", "gw-alive", start.plusSeconds(10));
    Message dead =
        repository.insertStreamingAnswer(conversation, "m", "gw-dead", start.plusSeconds(10));
    Message finished =
        repository.insertStreamingAnswer(conversation, "m", "gw-dead", start.plusSeconds(10));
    repository.finishMessage(
        finished.id(), "done", ConversationRepository.COMPLETE, "stop", 1, 1, null);

    Instant later = start.plusSeconds(30);
    assertThat(repository.renewLeases("gw-alive", List.of(alive.id()), later.plusSeconds(10)))
        .isEqualTo(1);
    assertThat(repository.renewLeases("gw-alive", List.of(dead.id()), later.plusSeconds(10)))
        .as("a gateway renews only its own answers")
        .isZero();

    assertThat(repository.expiredAnswers(later, 10)).containsExactly(dead.id());
    assertThat(repository.failInterrupted(dead.id(), "partial", later)).isTrue();
    assertThat(repository.failInterrupted(dead.id(), "other", later)).as("once").isFalse();
    assertThat(repository.failInterrupted(alive.id(), null, later)).as("leased").isFalse();

    Message failed = repository.findMessage(OWNER, dead.id()).orElseThrow();
    assertThat(failed.status()).isEqualTo("failed");
    assertThat(failed.content()).isEqualTo("partial");
    assertThat(repository.findMessage(OWNER, alive.id()).orElseThrow().status())
        .isEqualTo("streaming");
    assertThat(repository.findMessage(OWNER, finished.id()).orElseThrow().status())
        .isEqualTo("complete");
    assertThat(repository.expiredAnswers(later, 10)).isEmpty();
  }

  @Test
  void aGatewayWithAFixedIdFailsWhatItsEarlierRunLeftStreaming() {
    String conversation = repository.createConversation(OWNER, null).id();
    Instant leased = Instant.now().plusSeconds(60);
    Message mine = repository.insertStreamingAnswer(conversation, "m", "gw-1", leased);
    Message theirs = repository.insertStreamingAnswer(conversation, "m", "gw-2", leased);

    assertThat(repository.failAnswersOf("gw-1")).isEqualTo(1);

    assertThat(repository.findMessage(OWNER, mine.id()).orElseThrow().status()).isEqualTo("failed");
    assertThat(repository.findMessage(OWNER, theirs.id()).orElseThrow().status())
        .isEqualTo("streaming");
  }

  /** A clock the test moves. */
  static final class TestClock extends Clock {
    private volatile Instant now = Instant.now();

    void advance(Duration by) {
      now = now.plus(by);
    }

    @Override
    public ZoneId getZone() {
      return ZoneOffset.UTC;
    }

    @Override
    public Clock withZone(ZoneId zone) {
      return this;
    }

    @Override
    public Instant instant() {
      return now;
    }
  }

  @Test
  void twoGatewaysOnOneDatabaseFailOnlyTheAnswersOfTheOneThatDied() {
    TestClock clock = new TestClock();
    StreamProperties properties =
        new StreamProperties(
            Duration.ofMillis(400),
            Duration.ofSeconds(30),
            Duration.ofMinutes(10),
            Duration.ofSeconds(5),
            Duration.ofHours(1), // rounds are run by the test
            "",
            100_000);
    LocalStreamStore streams = new LocalStreamStore(properties);
    OwnerLeases alive = new OwnerLeases(repository, streams, "gw-a", properties, clock);
    OwnerLeases dying = new OwnerLeases(repository, streams, "gw-b", properties, clock);
    try {
      String conversation = repository.createConversation(OWNER, null).id();
      Message a =
          repository.insertStreamingAnswer(conversation, "m", "gw-a", alive.firstLeaseEnd());
      alive.started(a.id());
      Message b =
          repository.insertStreamingAnswer(conversation, "m", "gw-b", dying.firstLeaseEnd());
      dying.started(b.id());

      clock.advance(Duration.ofSeconds(3));
      alive.renewAndSweep();
      dying.renewAndSweep();
      dying.destroy(); // killed: it never renews again

      clock.advance(Duration.ofSeconds(4));
      alive.renewAndSweep();
      assertThat(status(a)).isEqualTo("streaming");
      assertThat(status(b)).as("its lease still runs").isEqualTo("streaming");

      clock.advance(Duration.ofSeconds(3));
      alive.renewAndSweep();
      alive.renewAndSweep();
      assertThat(status(a)).as("renewed by its live gateway").isEqualTo("streaming");
      assertThat(status(b)).isEqualTo("failed");
    } finally {
      alive.destroy();
      dying.destroy();
      streams.close();
    }
  }

  private String status(Message m) {
    return repository.findMessage(OWNER, m.id()).orElseThrow().status();
  }
}
