package io.selfhosted.gateway.stream.redis;

import io.selfhosted.gateway.sse.EventSink;
import io.selfhosted.gateway.stream.ResumableStream;

/**
 * What a reader on any replica knows of a stream in Redis: enough to check ownership and resume.
 */
final class RedisView implements ResumableStream {

  private final StreamContext ctx;
  private final StreamReaders readers;
  private final String messageId;
  private final String conversationId;
  private final String ownerKeyId;
  private final String instance;

  RedisView(
      StreamContext ctx,
      StreamReaders readers,
      String messageId,
      String conversationId,
      String ownerKeyId,
      String instance) {
    this.ctx = ctx;
    this.readers = readers;
    this.messageId = messageId;
    this.conversationId = conversationId;
    this.ownerKeyId = ownerKeyId;
    this.instance = instance;
  }

  /** The gateway that generates the answer. */
  String instance() {
    return instance;
  }

  @Override
  public String messageId() {
    return messageId;
  }

  @Override
  public String conversationId() {
    return conversationId;
  }

  @Override
  public String ownerKeyId() {
    return ownerKeyId;
  }

  @Override
  public Resume checkResume(long lastEventId) {
    // Ended first: a stream seen ended has its final event among the ones counted next.
    boolean ended = "1".equals(ctx.redis.hget(StreamKeys.meta(messageId), "ended"));
    long last = ctx.lastSeq(messageId);
    if (lastEventId < 0 || lastEventId > last) {
      return Resume.BEYOND_STREAM;
    }
    return ended && lastEventId == last ? Resume.NOTHING_LEFT : Resume.OK;
  }

  @Override
  public void attach(long lastEventId, EventSink sink) {
    readers.attach(messageId, lastEventId, sink);
  }

  @Override
  public void detach(EventSink sink) {
    readers.detach(messageId, sink);
  }
}
