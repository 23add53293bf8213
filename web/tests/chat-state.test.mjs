// The chat page's state on its own (no browser, no stack): what the page will show for each
// sequence of events, and the notices it derives from the gateway's answers.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ChatState, messageFromServer, noticeForRefusal, noticesForFinish } from "../js/chat-state.js";
import { degradedReasons, duration, languageFor, setLanguage } from "../js/i18n.js";
import { noticeText, secondsLeft } from "../js/notices.js";

const NOW = 1_700_000_000_000;

/** A state with conversation `c1` open, holding one finished exchange. */
function withExchange() {
  const state = new ChatState();
  state.openConversation("c1", [
    { id: "u1", role: "user", text: "你好", status: "complete" },
    { id: "a1", role: "assistant", text: "你好!", status: "complete" },
  ]);
  return state;
}

test("deltas build the reply in order; a replayed event id is dropped", () => {
  const state = withExchange();
  state.startExchange("如何保持健康?", "a2");
  assert.equal(state.streamingId, "a2");
  assert.deepEqual(state.messages.at(-2), { id: "a2-q", role: "user", text: "如何保持健康?", status: "complete" });
  assert.equal(state.appendDelta("a2", "保持", 1), true);
  assert.equal(state.appendDelta("a2", "健康", 2), true);
  // EventSource reconnected with Last-Event-ID 1 and the gateway replays event 2 once more.
  assert.equal(state.appendDelta("a2", "健康", 2), false);
  assert.equal(state.appendDelta("a2", "需要", 3), true);
  assert.equal(state.find("a2")?.text, "保持健康需要");
  assert.equal(state.find("a2")?.lastEventId, 3);
  assert.equal(state.appendDelta("nope", "x", 4), false);
});

test("finish, cancel and failure end the reply and free the composer", () => {
  const state = withExchange();
  state.startExchange("q", "a2");
  state.appendDelta("a2", "partial", 1);
  state.finishStream("a2", { finish_reason: "cancelled", degraded: false });
  assert.equal(state.find("a2")?.status, "cancelled");
  assert.equal(state.find("a2")?.text, "partial");
  assert.equal(state.streamingId, null);
  // A late delta after the end is not appended.
  assert.equal(state.appendDelta("a2", " more", 2), false);

  state.startExchange("q", "a3");
  state.finishStream("a3", { finish_reason: "stop", degraded: false });
  assert.equal(state.find("a3")?.status, "complete");
  assert.equal(state.find("a3")?.notices, undefined);

  state.startExchange("q", "a4");
  state.failStream("a4", { message: "upstream stream failed", code: "upstream_error" });
  const failed = state.find("a4");
  assert.equal(failed?.status, "failed");
  assert.equal(failed?.error, "upstream stream failed");
  assert.deepEqual(failed?.notices, [{ kind: "error", scope: "reply", code: "upstream_error", message: "upstream stream failed" }]);
  assert.equal(state.streamingId, null);
});

test("a degraded or content-filtered finish leaves its notice on the reply", () => {
  const state = withExchange();
  state.startExchange("q", "a2");
  state.finishStream("a2", { finish_reason: "stop", degraded: true, degraded_reason: "maintenance" });
  assert.deepEqual(state.find("a2")?.notices, [{ kind: "degraded", reasons: "maintenance" }]);

  state.startExchange("q", "a3");
  state.finishStream("a3", { finish_reason: "content_filter", degraded: true, degraded_reason: "streaming_off, max_tokens_capped" });
  assert.deepEqual(state.find("a3")?.notices, [
    { kind: "degraded", reasons: "streaming_off, max_tokens_capped" },
    { kind: "content_filter", scope: "reply" },
  ]);
  assert.deepEqual(noticesForFinish({ finish_reason: "length", degraded: false }), []);
});

test("refusals become notices of the right kind, with the wait from Retry-After", () => {
  assert.deepEqual(noticeForRefusal({ status: 429, code: "rate_limit_exceeded", message: "rate limit of 2 requests per minute reached", retryAfter: 27 }, NOW), {
    kind: "rate_limit", code: "rate_limit_exceeded", scope: "prompt", message: "rate limit of 2 requests per minute reached", retryAt: NOW + 27_000,
  });
  assert.equal(noticeForRefusal({ status: 429, code: "insufficient_quota", retryAfter: 3600 }, NOW).kind, "quota");
  assert.equal(noticeForRefusal({ status: 400, code: "content_filter", message: "refused" }, NOW).kind, "content_filter");
  const overloaded = noticeForRefusal({ status: 503, code: "overloaded", retryAfter: 5 }, NOW);
  assert.equal(overloaded.kind, "error");
  assert.equal(overloaded.code, "overloaded");
  assert.equal(overloaded.retryAt, NOW + 5000);
  assert.equal(noticeForRefusal({ status: 503, code: "read_only" }, NOW).retryAt, undefined);
});

test("a refusal shows until its wait is over; a new reply clears it", () => {
  const state = withExchange();
  state.refuse({ status: 429, code: "rate_limit_exceeded", retryAfter: 2 }, NOW);
  assert.equal(state.notice?.kind, "rate_limit");
  assert.equal(secondsLeft(state.notice, NOW + 200), 2);
  assert.equal(secondsLeft(state.notice, NOW + 1200), 1);
  assert.equal(state.expireNotice(NOW + 1999), false);
  assert.equal(state.expireNotice(NOW + 2000), true);
  assert.equal(state.notice, null);

  // A quota is not "over" when the countdown ends on this page: it stays until dismissed.
  state.refuse({ status: 429, code: "insufficient_quota", retryAfter: 1 }, NOW);
  assert.equal(state.expireNotice(NOW + 5000), false);
  state.startExchange("q", "a2");
  assert.equal(state.notice, null);
});

test("switching conversations keeps a limit notice, drops a prompt notice, and keeps a live reply", () => {
  const state = withExchange();
  state.startExchange("long question", "a2");
  state.appendDelta("a2", "first half", 1);

  state.refuse({ status: 400, code: "content_filter" }, NOW);
  state.openConversation("c2", [{ id: "x", role: "user", text: "other", status: "complete" }]);
  assert.equal(state.notice, null, "a refused prompt belongs to the conversation it was typed in");
  assert.equal(state.streamingId, null, "the other conversation has nothing streaming");
  // The reply goes on while another conversation is on screen.
  assert.equal(state.appendDelta("a2", ", second half", 2), true);

  state.refuse({ status: 429, code: "rate_limit_exceeded", retryAfter: 30 }, NOW);
  // Back to c1: the server's snapshot has older text; the page keeps what it streamed.
  state.openConversation("c1", [
    { id: "u1", role: "user", text: "你好", status: "complete" },
    { id: "a1", role: "assistant", text: "你好!", status: "complete" },
    { id: "u2", role: "user", text: "long question", status: "complete" },
    { id: "a2", role: "assistant", text: "first", status: "streaming" },
  ]);
  assert.equal(state.notice?.kind, "rate_limit", "a limit applies to the key, whatever the conversation");
  assert.equal(state.streamingId, "a2");
  assert.equal(state.find("a2")?.text, "first half, second half");
  assert.equal(state.resumableId(), null, "a reply followed here needs no second stream");
  state.finishStream("a2", { finish_reason: "stop", degraded: false });
  assert.equal(state.find("a2")?.status, "complete");
});

test("a reply tracked while its conversation was left shows when the user comes back", () => {
  const state = new ChatState();
  state.openConversation("c2", []);
  state.track("a9", "c1");
  state.appendDelta("a9", "hello", 1);
  assert.equal(state.streamingId, null);
  state.openConversation("c1", [
    { id: "u9", role: "user", text: "hi", status: "complete" },
    { id: "a9", role: "assistant", text: "", status: "streaming" },
  ]);
  assert.equal(state.streamingId, "a9");
  assert.equal(state.find("a9")?.text, "hello");
});

test("after a reload a streaming reply is resumed: the replay replaces the stored text once", () => {
  const state = new ChatState();
  state.openConversation("c1", [
    messageFromServer({ id: "u1", role: "user", content: "q", status: "complete" }),
    messageFromServer({ id: "a1", role: "assistant", content: "par", status: "streaming" }),
  ]);
  assert.equal(state.resumableId(), "a1");
  assert.equal(state.resume("a1"), true);
  assert.equal(state.streamingId, "a1");
  assert.equal(state.resumableId(), null);
  assert.equal(state.find("a1")?.text, "par", "the stored text shows until the replay starts");
  // The stream replays from event 1: the text is rebuilt, not appended to the snapshot.
  state.appendDelta("a1", "par", 1);
  state.appendDelta("a1", "tial", 2);
  state.appendDelta("a1", "tial", 2);
  assert.equal(state.find("a1")?.text, "partial");
  state.finishStream("a1", { finish_reason: "stop", degraded: false });
  assert.equal(state.find("a1")?.status, "complete");
});

test("a lost stream settles with what the server stored", () => {
  const state = withExchange();
  state.startExchange("q", "a2");
  state.appendDelta("a2", "half", 1);
  state.settle("a2", messageFromServer({ id: "a2", role: "assistant", content: "half and the rest", status: "complete", finishReason: "content_filter" }));
  const m = state.find("a2");
  assert.equal(m?.status, "complete");
  assert.equal(m?.text, "half and the rest");
  assert.deepEqual(m?.notices, [{ kind: "content_filter", scope: "reply" }]);
  assert.equal(state.streamingId, null);
});

test("regenerate re-asks the last question and replaces only the last reply", () => {
  const state = withExchange();
  assert.equal(state.regenerableQuestion(), "你好");
  const replaced = state.replaceLastReply("a1b");
  assert.equal(replaced, "a1");
  assert.deepEqual(
    state.messages.map((m) => [m.id, m.role, m.status]),
    [["u1", "user", "complete"], ["a1b", "assistant", "streaming"]],
  );
  // Not while the new reply streams.
  assert.equal(state.regenerableQuestion(), null);
  assert.throws(() => state.replaceLastReply("a1c"));
  state.failStream("a1b", { message: "boom" });
  // A failed reply may be regenerated too.
  assert.equal(state.regenerableQuestion(), "你好");

  const empty = new ChatState();
  empty.openConversation("c3", []);
  assert.equal(empty.regenerableQuestion(), null);
});

test("signing out forgets conversations, replies still streaming and notices", () => {
  const state = withExchange();
  state.setConversations([{ id: "c1", title: "你好" }]);
  state.startExchange("q", "a2");
  state.refuse({ status: 429, code: "insufficient_quota" }, NOW);
  state.reset();
  assert.deepEqual([state.conversations, state.conversationId, state.messages, state.notice, state.live.size], [[], null, [], null, 0]);
  // The same conversation opened again by the next sign-in is not stuck "streaming".
  state.openConversation("c1", [{ id: "a2", role: "assistant", text: "", status: "complete" }]);
  assert.equal(state.streamingId, null);
});

test("stored messages carry their end: failed, content-filtered and degraded replies get notices", () => {
  assert.deepEqual(
    messageFromServer({
      id: 6, role: "assistant", content: "Back soon.", status: "complete", finishReason: "stop",
      degraded: true, degradedReason: "maintenance",
    }).notices,
    [{ kind: "degraded", reasons: "maintenance" }],
  );
  assert.deepEqual(messageFromServer({ id: 7, role: "assistant", content: "x", status: "failed", finishReason: "error" }).notices, [
    { kind: "error", scope: "reply" },
  ]);
  assert.deepEqual(messageFromServer({ id: 8, role: "assistant", content: "x", status: "complete", finishReason: "content_filter" }).notices, [
    { kind: "content_filter", scope: "reply" },
  ]);
  const user = messageFromServer({ id: 9, role: "user", content: "hi", status: "complete" });
  assert.equal(user.id, "9");
  assert.equal(user.notices, undefined);
  assert.equal(messageFromServer({ id: 1, role: "assistant", content: null, status: "weird" }).status, "complete");
});

test("notices read as sentences with the wait and the degraded reason in words, in both languages", () => {
  try {
    setLanguage("en");
    const limit = noticeForRefusal({ status: 429, code: "rate_limit_exceeded", retryAfter: 27 }, NOW);
    assert.match(noticeText(limit, NOW), /\b27\ss\b/);
    assert.match(noticeText(limit, NOW + 10_500), /\b17\ss\b/);
    assert.match(noticeText({ kind: "degraded", reasons: "maintenance" }, NOW), /maintenance/);
    assert.match(noticeText({ kind: "degraded", reasons: "streaming_off, model_routed" }, NOW), /streaming is turned off.*another model/);
    assert.match(noticeText({ kind: "degraded", reasons: "brand_new_reason" }, NOW), /brand_new_reason/);
    assert.match(noticeText({ kind: "quota", retryAt: NOW + 5 * 3600_000 }, NOW), /5\sh 0\smin/);
    assert.match(noticeText({ kind: "error", code: "overloaded", retryAt: NOW + 3000 }, NOW), /busy.*3\ss/);
    assert.match(noticeText({ kind: "error", scope: "reply", message: "upstream died" }, NOW), /upstream died/);

    setLanguage("zh");
    assert.match(noticeText(limit, NOW), /27 秒/);
    assert.match(noticeText({ kind: "degraded", reasons: "maintenance" }, NOW), /维护/);
    assert.match(degradedReasons("fallback_model"), /备用模型/);
    assert.equal(duration(90), "90 秒");
  } finally {
    setLanguage("en");
  }
  assert.equal(languageFor("zh-CN"), "zh");
  assert.equal(languageFor("zh-Hant-TW"), "zh");
  assert.equal(languageFor("en-GB"), "en");
  assert.equal(languageFor("zu"), "en");
  assert.equal(languageFor(undefined), "en");
});
