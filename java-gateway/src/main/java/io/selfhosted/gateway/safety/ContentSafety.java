package io.selfhosted.gateway.safety;

import com.fasterxml.jackson.databind.JsonNode;
import io.selfhosted.gateway.pipeline.DegradationLog;
import io.selfhosted.gateway.pipeline.EndGeneration;
import io.selfhosted.gateway.pipeline.Exchange;
import io.selfhosted.gateway.pipeline.Stage;
import io.selfhosted.gateway.system.ApiException;
import io.selfhosted.gateway.upstream.ChatCall;
import io.selfhosted.gateway.upstream.Chunk;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Collectors;
import org.springframework.http.HttpStatus;
import org.springframework.lang.Nullable;
import org.springframework.stereotype.Component;

/**
 * The content checks of every generation. Before: the prompt (every message not from the assistant)
 * against the rules, then the external moderation service when one is configured; a hit is 400
 * {@code content_filter}. During: the streamed text, and the tool calls' names and arguments, of
 * each choice through sliding-window scanners that hold back only what the longest rule needs; a
 * hit stops the upstream and ends the reply with finish_reason {@code content_filter}, the
 * offending text never relayed. The logprobs entries of held-back text wait with it ({@link
 * HeldLogprobs}).
 */
@Component
public class ContentSafety implements Stage {

  private static final Object SCANS = new Object();

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
      if (!"assistant".equals(message.role()) && message.content() != null) {
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
    exchange.attribute(SCANS, new ConcurrentHashMap<Integer, ChoiceScan>());
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
  public List<Chunk> onChunk(Exchange exchange, Chunk chunk) {
    Map<Integer, ChoiceScan> scans = exchange.attribute(SCANS);
    if (scans == null || !chunk.hasChoice()) {
      return List.of(chunk);
    }
    ChoiceScan scan = scans.computeIfAbsent(chunk.choice(), c -> new ChoiceScan(exchange, c));
    return scan.next(exchange, chunk);
  }

  @Override
  public List<Chunk> beforeEnd(Exchange exchange) {
    Map<Integer, ChoiceScan> scans = exchange.attribute(SCANS);
    if (scans == null) {
      return List.of();
    }
    List<Chunk> rest = new ArrayList<>();
    for (ChoiceScan scan : new TreeMap<>(scans).values()) {
      rest.addAll(scan.end(exchange));
    }
    return rest;
  }

  /**
   * The check of one choice of a streamed reply: its text through one scanner, each of its tool
   * calls' arguments through another, names checked whole (a call's first fragment carries its
   * name). Calls stream one after another, so only the open call holds a tail; it is released when
   * the next call starts or the choice ends. What goes out keeps one tool call per chunk, as OpenAI
   * streams them (some clients take no more).
   */
  private final class ChoiceScan {
    private final int choice;
    private final @Nullable HeldLogprobs logprobs;
    private StreamScanner text;
    private @Nullable StreamScanner arguments;
    private int openCall = -1;
    private boolean ended;

    ChoiceScan(Exchange exchange, int choice) {
      this.choice = choice;
      this.text = filter.scanner();
      // Only a call that asks for logprobs gets chunks with entries to hold.
      this.logprobs = exchange.call().wantsLogprobs() ? new HeldLogprobs() : null;
    }

    List<Chunk> next(Exchange exchange, Chunk chunk) {
      if (ended) {
        return List.of(chunk);
      }
      StringBuilder release = new StringBuilder(released(exchange, text.next(chunk.text())));
      List<Chunk.ToolCallPiece> out = new ArrayList<>();
      if (!chunk.toolCalls().isEmpty()) {
        // Text before a call is done: nothing the call streams can complete a match in it.
        release.append(released(exchange, text.finish()));
        text = filter.scanner();
      }
      for (Chunk.ToolCallPiece piece : chunk.toolCalls()) {
        if (piece.name() != null) {
          Verdict verdict = filter.check(piece.name());
          if (verdict != null) {
            block(exchange, verdict);
          }
        }
        if (piece.index() != openCall) {
          closeCall(exchange, out);
          openCall = piece.index();
          arguments = filter.scanner();
        }
        String args = released(exchange, arguments.next(piece.arguments()));
        if (!args.isEmpty() || piece.id() != null || piece.type() != null || piece.name() != null) {
          out.add(withArguments(piece, args));
        }
      }
      if (chunk.finishReason() != null) {
        // The choice's last chunk: nothing more can complete a match, so release what is held.
        ended = true;
        release.append(released(exchange, text.finish()));
        closeCall(exchange, out);
      }
      HeldLogprobs.Release entries =
          logprobs == null
              ? null
              : logprobs.next(chunk.text(), chunk.logprobs(), release.length(), true);
      return emit(chunk, release.toString(), entries, merged(out));
    }

    List<Chunk> end(Exchange exchange) {
      if (ended) {
        return List.of();
      }
      ended = true;
      String release = released(exchange, text.finish());
      List<Chunk.ToolCallPiece> out = new ArrayList<>();
      closeCall(exchange, out);
      List<JsonNode> rest = logprobs == null ? List.of() : logprobs.finish();
      if (release.isEmpty() && rest.isEmpty() && out.isEmpty()) {
        return List.of();
      }
      Chunk base = Chunk.of("chatcmpl-" + exchange.requestId(), choice, "", null);
      return emit(base, release, new HeldLogprobs.Release(rest, rest.isEmpty()), out);
    }

    private void closeCall(Exchange exchange, List<Chunk.ToolCallPiece> out) {
      if (arguments == null) {
        return;
      }
      String tail = released(exchange, arguments.finish());
      if (!tail.isEmpty()) {
        out.add(new Chunk.ToolCallPiece(openCall, null, null, null, tail));
      }
      arguments = null;
    }

    /**
     * The chunks that carry a step's release: the text and its logprobs with the first tool call,
     * one chunk for each further call, the finish reason and usage on the last.
     */
    private List<Chunk> emit(
        Chunk chunk,
        String release,
        @Nullable HeldLogprobs.Release entries,
        List<Chunk.ToolCallPiece> pieces) {
      boolean ownLogprobs = entries == null || entries.ownOnly();
      boolean sameText = release.equals(chunk.text());
      if (sameText && ownLogprobs && pieces.equals(chunk.toolCalls())) {
        return List.of(chunk);
      }
      if (release.isEmpty()
          && (entries == null || entries.entries().isEmpty())
          && pieces.isEmpty()
          && chunk.finishReason() == null
          && chunk.usage() == null) {
        return List.of(); // all held back for now
      }
      Chunk first = sameText ? chunk : chunk.withText(release);
      first = ownLogprobs ? first : first.withLogprobs(entries.entries());
      if (pieces.size() <= 1) {
        return List.of(pieces.equals(chunk.toolCalls()) ? first : first.withToolCalls(pieces));
      }
      // After merging, each piece is another call's.
      List<Chunk> out = new ArrayList<>();
      out.add(first.withoutEnd().withToolCalls(List.of(pieces.get(0))));
      for (int i = 1; i < pieces.size() - 1; i++) {
        out.add(chunk.toolCallsOnly(List.of(pieces.get(i))));
      }
      Chunk last = chunk.text().isEmpty() ? chunk : chunk.withText("");
      if (!chunk.logprobs().isEmpty()) {
        last = last.withLogprobs(List.of());
      }
      out.add(last.withToolCalls(List.of(pieces.get(pieces.size() - 1))));
      return out;
    }
  }

  private static Chunk.ToolCallPiece withArguments(Chunk.ToolCallPiece piece, String arguments) {
    return new Chunk.ToolCallPiece(
        piece.index(), piece.id(), piece.type(), piece.name(), arguments);
  }

  /** Fragments of the same call in a row joined into one. */
  private static List<Chunk.ToolCallPiece> merged(List<Chunk.ToolCallPiece> pieces) {
    List<Chunk.ToolCallPiece> out = new ArrayList<>(pieces.size());
    for (Chunk.ToolCallPiece piece : pieces) {
      Chunk.ToolCallPiece last = out.isEmpty() ? null : out.get(out.size() - 1);
      if (last != null && last.index() == piece.index()) {
        out.set(
            out.size() - 1,
            new Chunk.ToolCallPiece(
                last.index(),
                last.id() != null ? last.id() : piece.id(),
                last.type() != null ? last.type() : piece.type(),
                last.name() != null ? last.name() : piece.name(),
                last.arguments() + piece.arguments()));
      } else {
        out.add(piece);
      }
    }
    return out;
  }

  private String released(Exchange exchange, StreamScanner.Step step) {
    blockIfFlagged(exchange, step);
    return step.release();
  }

  private void blockIfFlagged(Exchange exchange, StreamScanner.Step step) {
    if (step.isBlocked()) {
      block(exchange, step.blocked());
    }
  }

  private void block(Exchange exchange, Verdict verdict) {
    degradations.record(
        exchange,
        "filter",
        "reply_blocked",
        "rule " + verdict.ruleId() + " (" + verdict.category() + ")");
    throw new EndGeneration("content_filter", "content rule " + verdict.ruleId());
  }
}
