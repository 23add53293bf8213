package io.selfhosted.gateway.chat;

import static org.assertj.core.api.Assertions.assertThat;

import io.selfhosted.gateway.chat.ConversationRepository.Conversation;
import io.selfhosted.gateway.chat.ConversationRepository.Message;
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
  void marksAnswersLeftStreamingByACrashAsFailed() {
    String conversation = repository.createConversation(OWNER, null).id();
    Message answer =
        repository.insertMessage(
            conversation, "assistant", "", ConversationRepository.STREAMING, "m");

    assertThat(repository.failInterruptedMessages()).isEqualTo(1);

    assertThat(repository.findMessage(OWNER, answer.id()).orElseThrow().status())
        .isEqualTo("failed");
  }
}
