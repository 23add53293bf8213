package io.selfhosted.gateway.chat;

import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import org.springframework.jdbc.core.simple.JdbcClient;
import org.springframework.stereotype.Repository;

/** Conversations and their messages, on H2 or PostgreSQL through plain JDBC. */
@Repository
public class ConversationRepository {

  /** Stored message states; an assistant message is {@code streaming} until its stream ends. */
  public static final String COMPLETE = "complete";

  public static final String STREAMING = "streaming";
  public static final String CANCELLED = "cancelled";
  public static final String FAILED = "failed";

  private final JdbcClient jdbc;

  public ConversationRepository(JdbcClient jdbc) {
    this.jdbc = jdbc;
  }

  /** A conversation as listed. */
  public record Conversation(String id, String title, Instant createdAt, Instant updatedAt) {}

  /** A stored message. */
  public record Message(
      String id,
      String conversationId,
      String role,
      String content,
      String status,
      String model,
      String finishReason,
      Integer promptTokens,
      Integer completionTokens,
      String degraded,
      Instant createdAt) {}

  /** A new conversation owned by the API key {@code owner}. */
  public Conversation createConversation(String owner, String title) {
    String id = UUID.randomUUID().toString();
    OffsetDateTime now = now();
    jdbc.sql(
            "INSERT INTO conversations (id, owner_key_id, title, created_at, updated_at)"
                + " VALUES (?, ?, ?, ?, ?)")
        .params(id, owner, title, now, now)
        .update();
    return new Conversation(id, title, now.toInstant(), now.toInstant());
  }

  /** The conversation, if {@code owner} owns it. */
  public Optional<Conversation> findConversation(String owner, String id) {
    return jdbc.sql(
            "SELECT id, title, created_at, updated_at FROM conversations"
                + " WHERE id = ? AND owner_key_id = ?")
        .params(id, owner)
        .query(ConversationRepository::conversation)
        .optional();
  }

  public List<Conversation> listConversations(String owner, int limit) {
    return jdbc.sql(
            "SELECT id, title, created_at, updated_at FROM conversations WHERE owner_key_id = ?"
                + " ORDER BY updated_at DESC, id LIMIT ?")
        .params(owner, limit)
        .query(ConversationRepository::conversation)
        .list();
  }

  /** Stores a message and touches its conversation (giving it a title from its first query). */
  public Message insertMessage(
      String conversationId, String role, String content, String status, String model) {
    String id = UUID.randomUUID().toString();
    OffsetDateTime now = now();
    jdbc.sql(
            "INSERT INTO messages (id, conversation_id, role, content, status, model, created_at,"
                + " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
        .params(id, conversationId, role, content, status, model, now, now)
        .update();
    String title = "user".equals(role) ? titleOf(content) : null;
    jdbc.sql("UPDATE conversations SET updated_at = ?, title = COALESCE(title, ?) WHERE id = ?")
        .params(now, title, conversationId)
        .update();
    return new Message(
        id, conversationId, role, content, status, model, null, null, null, null, now.toInstant());
  }

  /**
   * Records how an assistant message ended: its text, status, finish reason, usage and the
   * degradations it got (null when none).
   */
  public void finishMessage(
      String id,
      String content,
      String status,
      String finishReason,
      Integer promptTokens,
      Integer completionTokens,
      String degraded) {
    jdbc.sql(
            "UPDATE messages SET content = ?, status = ?, finish_reason = ?, prompt_tokens = ?,"
                + " completion_tokens = ?, degraded = ?, updated_at = ? WHERE id = ?")
        .params(content, status, finishReason, promptTokens, completionTokens, degraded, now(), id)
        .update();
  }

  /** Removes messages of a conversation (a regenerated answer and its question). */
  public void deleteMessages(String conversationId, List<String> ids) {
    for (String id : ids) {
      jdbc.sql("DELETE FROM messages WHERE conversation_id = ? AND id = ?")
          .params(conversationId, id)
          .update();
    }
  }

  /** Answers still marked streaming after a restart lost their generation: mark them failed. */
  public int failInterruptedMessages() {
    return jdbc.sql("UPDATE messages SET status = ?, updated_at = ? WHERE status = ?")
        .params(FAILED, now(), STREAMING)
        .update();
  }

  /** The message, if {@code owner} owns its conversation. */
  public Optional<Message> findMessage(String owner, String id) {
    return jdbc.sql(
            MESSAGE_COLUMNS
                + " WHERE id = ? AND conversation_id IN"
                + " (SELECT id FROM conversations WHERE owner_key_id = ?)")
        .params(id, owner)
        .query(ConversationRepository::message)
        .optional();
  }

  public List<Message> listMessages(String conversationId) {
    return jdbc.sql(MESSAGE_COLUMNS + " WHERE conversation_id = ? ORDER BY seq")
        .param(conversationId)
        .query(ConversationRepository::message)
        .list();
  }

  private static final String MESSAGE_COLUMNS =
      "SELECT id, conversation_id, role, content, status, model, finish_reason, prompt_tokens,"
          + " completion_tokens, degraded, created_at FROM messages";

  private static String titleOf(String query) {
    String line = query.strip().replaceAll("\\s+", " ");
    return line.length() <= 60 ? line : line.substring(0, 60) + "…";
  }

  private static OffsetDateTime now() {
    // Microseconds: what both H2 and PostgreSQL store, so read-backs compare equal.
    Instant now = Instant.now();
    return OffsetDateTime.ofInstant(now.minusNanos(now.getNano() % 1000), ZoneOffset.UTC);
  }

  private static Conversation conversation(ResultSet rs, int row) throws SQLException {
    return new Conversation(
        rs.getString("id"),
        rs.getString("title"),
        rs.getObject("created_at", OffsetDateTime.class).toInstant(),
        rs.getObject("updated_at", OffsetDateTime.class).toInstant());
  }

  private static Message message(ResultSet rs, int row) throws SQLException {
    return new Message(
        rs.getString("id"),
        rs.getString("conversation_id"),
        rs.getString("role"),
        rs.getString("content"),
        rs.getString("status"),
        rs.getString("model"),
        rs.getString("finish_reason"),
        (Integer) rs.getObject("prompt_tokens"),
        (Integer) rs.getObject("completion_tokens"),
        rs.getString("degraded"),
        rs.getObject("created_at", OffsetDateTime.class).toInstant());
  }
}
