package io.selfhosted.gateway.safety;

import com.fasterxml.jackson.databind.JsonNode;
import io.selfhosted.gateway.pipeline.DegradationLog;
import io.selfhosted.gateway.pipeline.EndGeneration;
import io.selfhosted.gateway.pipeline.Exchange;
import io.selfhosted.gateway.pipeline.Stage;
import io.selfhosted.gateway.system.ApiException;
import io.selfhosted.gateway.upstream.ChatCall;
import io.selfhosted.gateway.upstream.Chunk;
import java.util.List;
import java.util.stream.Collectors;
import org.springframework.http.HttpStatus;
import org.springframework.lang.Nullable;
import org.springframework.stereotype.Component;

/**
 * The content checks of every generation. Before: the prompt (every message not from the assistant)
 * against the rules, then the external moderation service when one is configured; a hit is 400
 * {@code content_filter}. During: the streamed text through a sliding-window scanner that holds
 * back only what the longest rule needs; a hit stops the upstream and ends the reply with
 * finish_reason {@code content_filter}, the offending text never relayed. The logprobs entries of
 * held-back text wait with it ({@link HeldLogprobs}).
 */
@Component
public class ContentSafety implements Stage {

  private static final Object SCANNER = new Object();
  private static final Object LOGPROBS = new Object();

  private final ContentFilter filter;
  private final ModerationClient moderation;
  private final DegradationLog degradations;

  ContentSafety(ContentFilter filter, ModerationClient moderation, DegradationLog degradations) {
    this.filter = filter;
    this.moderation = moderation;
    this.degradations = degradations;
  }

  @Override
  public void admit(Exchange exchange) {
    for (ChatCall.Message message : exchange.call().messages()) {
      if (!"assistant".equals(message.role())) {
        refuseIfFlagged(exchange, filter.check(message.content()), "rules");
      }
    }
    if (moderation.enabled()) {
      String prompt =
          exchange.call().messages().stream()
              .filter(m -> "user".equals(m.role()))
              .map(ChatCall.Message::content)
              .collect(Collectors.joining("\n"));
      Verdict verdict;
      try {
        verdict = moderation.check(prompt);
      } catch (ModerationUnavailableException e) {
        degradations.record(exchange, "filter", "moderation_unavailable", e.getMessage());
        throw new ApiException(
            HttpStatus.SERVICE_UNAVAILABLE,
            "server_error",
            "moderation_unavailable",
            null,
            "the content check is unavailable; try again later",
            5L);
      }
      refuseIfFlagged(exchange, verdict, "moderation");
    }
    exchange.attribute(SCANNER, filter.scanner());
    if (exchange.call().wantsLogprobs()) {
      exchange.attribute(LOGPROBS, new HeldLogprobs()); // only then do chunks carry entries
    }
  }

  private void refuseIfFlagged(Exchange exchange, @Nullable Verdict verdict, String by) {
    if (verdict != null) {
      degradations.record(
          exchange,
          "filter",
          "prompt_blocked",
          by + " rule " + verdict.ruleId() + " (" + verdict.category() + ")");
      throw new ApiException(
          HttpStatus.BAD_REQUEST,
          "invalid_request_error",
          "content_filter",
          "messages",
          "the request was refused by the content policy (" + verdict.category() + ")");
    }
  }

  @Override
  public @Nullable Chunk onChunk(Exchange exchange, Chunk chunk) {
    StreamScanner scanner = exchange.attribute(SCANNER);
    if (scanner == null) {
      return chunk;
    }
    StreamScanner.Step step = scanner.next(chunk.text());
    blockIfFlagged(exchange, step);
    String release = step.release();
    if (chunk.finishReason() != null) {
      // The last content chunk: nothing more can complete a match, so release what is held.
      exchange.attribute(SCANNER, StreamScanner.passThrough());
      StreamScanner.Step last = scanner.finish();
      blockIfFlagged(exchange, last);
      release += last.release();
    }
    HeldLogprobs held = exchange.attribute(LOGPROBS);
    HeldLogprobs.Release logprobs =
        held == null
            ? null
            : held.next(chunk.text(), chunk.logprobs(), release.length(), chunk.hasChoice());
    boolean ownLogprobs = logprobs == null || logprobs.ownOnly();
    boolean sameText = release.equals(chunk.text());
    if (sameText && ownLogprobs) {
      return chunk;
    }
    if (release.isEmpty()
        && (logprobs == null || logprobs.entries().isEmpty())
        && chunk.finishReason() == null
        && chunk.usage() == null) {
      return null; // all held back for now
    }
    Chunk relayed = sameText ? chunk : chunk.withText(release);
    return ownLogprobs ? relayed : relayed.withLogprobs(logprobs.entries());
  }

  @Override
  public @Nullable Chunk beforeEnd(Exchange exchange) {
    StreamScanner scanner = exchange.attribute(SCANNER);
    if (scanner == null) {
      return null;
    }
    exchange.attribute(SCANNER, StreamScanner.passThrough());
    StreamScanner.Step last = scanner.finish();
    blockIfFlagged(exchange, last);
    HeldLogprobs held = exchange.attribute(LOGPROBS);
    List<JsonNode> logprobs = held == null ? List.of() : held.finish();
    if (last.release().isEmpty() && logprobs.isEmpty()) {
      return null;
    }
    return Chunk.of("chatcmpl-" + exchange.requestId(), last.release(), null)
        .withLogprobs(logprobs);
  }

  private void blockIfFlagged(Exchange exchange, StreamScanner.Step step) {
    if (step.isBlocked()) {
      Verdict verdict = step.blocked();
      degradations.record(
          exchange,
          "filter",
          "reply_blocked",
          "rule " + verdict.ruleId() + " (" + verdict.category() + ")");
      throw new EndGeneration("content_filter", "content rule " + verdict.ruleId());
    }
  }
}
