package io.selfhosted.gateway.chat;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.boot.ApplicationArguments;
import org.springframework.boot.ApplicationRunner;
import org.springframework.stereotype.Component;

/** At start-up, no generation is running: answers left streaming by a crash are failed. */
@Component
class InterruptedMessages implements ApplicationRunner {

  private static final Logger log = LoggerFactory.getLogger(InterruptedMessages.class);

  private final ConversationRepository conversations;

  InterruptedMessages(ConversationRepository conversations) {
    this.conversations = conversations;
  }

  @Override
  public void run(ApplicationArguments args) {
    int count = conversations.failInterruptedMessages();
    if (count > 0) {
      log.warn("{} answers were interrupted by a restart and are now marked failed", count);
    }
  }
}
