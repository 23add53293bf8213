// @ts-check
// Chat state, kept apart from the DOM so that it can be reasoned about (and tested) on its own.
// Nothing here knows about elements, strings in a language, or the network.

/**
 * A notice the page shows. `retryAt` (epoch ms) comes from Retry-After; `message` is the
 * server's own wording (shown as text, never as HTML); `reasons` are a degraded reply's tokens.
 * @typedef {{ kind: "rate_limit" | "quota" | "degraded" | "content_filter" | "error",
 *             code?: string, message?: string, retryAt?: number, reasons?: string,
 *             scope?: "prompt" | "reply" }} Notice
 * @typedef {{ id: string, role: "user" | "assistant", text: string,
 *             status: "streaming" | "complete" | "cancelled" | "failed", error?: string,
 *             finishReason?: string, notices?: Notice[], lastEventId?: number,
 *             resuming?: boolean }} ChatMessage
 * @typedef {{ id: string, title: string }} Conversation
 * @typedef {{ status: number, code?: string, message?: string, retryAfter?: number }} Refusal
 */

/**
 * What the page tells a user whose request the gateway refused before a reply started.
 * @param {Refusal} refusal @param {number} now epoch ms
 * @returns {Notice}
 */
export function noticeForRefusal({ status, code, message, retryAfter }, now) {
  const retryAt = Number.isFinite(retryAfter) && /** @type {number} */ (retryAfter) >= 0
    ? now + /** @type {number} */ (retryAfter) * 1000
    : undefined;
  /** @type {Notice} */
  let notice;
  if (status === 429 && code === "insufficient_quota") notice = { kind: "quota", code, scope: "prompt" };
  else if (status === 429) notice = { kind: "rate_limit", code: code ?? "rate_limit_exceeded", scope: "prompt" };
  else if (code === "content_filter") notice = { kind: "content_filter", code, scope: "prompt" };
  else notice = { kind: "error", scope: "prompt" };
  if (code && !notice.code) notice.code = code;
  if (message) notice.message = message;
  if (retryAt !== undefined) notice.retryAt = retryAt;
  return notice;
}

/**
 * The notices a finished reply carries: its degradation and a cut by the content rules.
 * @param {{ finish_reason?: string, degraded?: boolean, degraded_reason?: string | null }} finish
 * @returns {Notice[]}
 */
export function noticesForFinish(finish) {
  /** @type {Notice[]} */
  const notices = [];
  if (finish.degraded) notices.push({ kind: "degraded", reasons: finish.degraded_reason ?? "" });
  if (finish.finish_reason === "content_filter") notices.push({ kind: "content_filter", scope: "reply" });
  return notices;
}

/**
 * A stored message (GET /api/conversations/{id}/messages) as the page holds it.
 * @param {any} m
 * @returns {ChatMessage}
 */
export function messageFromServer(m) {
  const status = m.status === "streaming" || m.status === "cancelled" || m.status === "failed" ? m.status : "complete";
  /** @type {ChatMessage} */
  const msg = { id: String(m.id), role: m.role === "user" ? "user" : "assistant", text: m.content ?? "", status };
  if (m.finishReason) msg.finishReason = m.finishReason;
  if (msg.role === "assistant") {
    const notices = noticesForFinish({
      finish_reason: m.finishReason,
      degraded: m.degraded,
      degraded_reason: m.degradedReason,
    });
    if (status === "failed") notices.push({ kind: "error", scope: "reply" });
    if (notices.length) msg.notices = notices;
  }
  return msg;
}

export class ChatState {
  constructor() {
    /** @type {Conversation[]} */
    this.conversations = [];
    /** @type {string | null} null: a new chat, created on the server with its first message */
    this.conversationId = null;
    /** @type {ChatMessage[]} the messages of the open conversation */
    this.messages = [];
    /**
     * Replies still streaming, whichever conversation they belong to: switching away does not
     * stop a reply, and switching back shows it as it goes on.
     * @type {Map<string, { conversationId: string, message: ChatMessage }>}
     */
    this.live = new Map();
    /** @type {Notice | null} a refusal shown above the message box (not tied to a message) */
    this.notice = null;
  }

  /** The reply streaming in the open conversation, if any. */
  get streamingId() {
    for (const [id, entry] of this.live) if (entry.conversationId === this.conversationId) return id;
    return null;
  }

  /** Forgets everything (signing out): another key may sign in next. */
  reset() {
    this.conversations = [];
    this.conversationId = null;
    this.messages = [];
    this.live.clear();
    this.notice = null;
  }

  /** @param {Conversation[]} list */
  setConversations(list) {
    this.conversations = list;
  }

  /**
   * Shows a conversation; a reply of it that is still streaming here keeps its live text. A
   * prompt-level notice does not outlive the conversation it was about, a limit does.
   * @param {string | null} id @param {ChatMessage[]} messages
   */
  openConversation(id, messages) {
    this.conversationId = id;
    this.messages = messages.map((m) => this.live.get(m.id)?.message ?? m);
    if (this.notice && this.notice.kind !== "rate_limit" && this.notice.kind !== "quota") this.notice = null;
  }

  /**
   * A reply of the open conversation that is streaming on the server but not followed here
   * (the page was reloaded while it streamed): the page attaches to its stream again.
   */
  resumableId() {
    const last = this.messages.at(-1);
    return last && last.role === "assistant" && last.status === "streaming" && !this.live.has(last.id) ? last.id : null;
  }

  /**
   * Follows a stored streaming reply again. Its stream replays from the first event, so the text
   * stored so far is replaced when the first replayed event arrives.
   * @param {string} id
   */
  resume(id) {
    const msg = this.find(id);
    if (!msg || !this.conversationId) return false;
    msg.resuming = true;
    delete msg.lastEventId;
    this.live.set(id, { conversationId: this.conversationId, message: msg });
    return true;
  }

  /**
   * The user's question and an empty reply to stream into.
   * @param {string} text @param {string} assistantId
   */
  startExchange(text, assistantId) {
    if (!this.conversationId) throw new Error("startExchange needs an open conversation");
    this.messages.push({ id: `${assistantId}-q`, role: "user", text, status: "complete" });
    this.startReply(assistantId);
  }

  /** @param {string} assistantId */
  startReply(assistantId) {
    /** @type {ChatMessage} */
    const reply = { id: assistantId, role: "assistant", text: "", status: "streaming" };
    this.messages.push(reply);
    this.live.set(assistantId, { conversationId: /** @type {string} */ (this.conversationId), message: reply });
    this.notice = null;
  }

  /**
   * Follows a reply of a conversation that is not on screen (the user switched away while the
   * question was on its way): its text builds up here and shows when they switch back.
   * @param {string} id @param {string} conversationId
   */
  track(id, conversationId) {
    this.live.set(id, { conversationId, message: { id, role: "assistant", text: "", status: "streaming" } });
  }

  /**
   * Ends a reply with what the server stored (its stream was lost): text, status and notices.
   * @param {string} id @param {ChatMessage} stored
   */
  settle(id, stored) {
    const msg = this.live.get(id)?.message ?? this.find(id);
    this.live.delete(id);
    if (!msg) return;
    msg.text = stored.text;
    msg.status = stored.status;
    msg.resuming = false;
    if (stored.finishReason) msg.finishReason = stored.finishReason;
    if (stored.notices) msg.notices = stored.notices;
    else delete msg.notices;
  }

  /**
   * Appends a delta once: an event id at or below the last one seen is a replay and is dropped.
   * @param {string} id @param {string} delta @param {number} eventId
   */
  appendDelta(id, delta, eventId) {
    const msg = this.live.get(id)?.message ?? this.find(id);
    if (!msg || msg.status !== "streaming") return false;
    if (Number.isFinite(eventId) && msg.lastEventId !== undefined && eventId <= msg.lastEventId) return false;
    if (msg.resuming) {
      msg.text = "";
      msg.resuming = false;
    }
    msg.text += delta;
    if (Number.isFinite(eventId)) msg.lastEventId = eventId;
    return true;
  }

  /**
   * The `finish` event of a reply: complete or cancelled, with its notices.
   * @param {string} id @param {{ finish_reason?: string, degraded?: boolean, degraded_reason?: string | null }} finish
   */
  finishStream(id, finish) {
    const msg = this.live.get(id)?.message ?? this.find(id);
    this.live.delete(id);
    if (!msg) return;
    msg.status = finish.finish_reason === "cancelled" ? "cancelled" : "complete";
    if (finish.finish_reason) msg.finishReason = finish.finish_reason;
    // A replay of a reply whose events all came before (nothing replayed): keep the stored text.
    msg.resuming = false;
    const notices = noticesForFinish(finish);
    if (notices.length) msg.notices = notices;
  }

  /**
   * An `event: error` (or a lost connection): the reply failed, with what the server said.
   * @param {string} id @param {{ message?: string, code?: string }} error
   */
  failStream(id, error) {
    const msg = this.live.get(id)?.message ?? this.find(id);
    this.live.delete(id);
    if (!msg) return;
    msg.status = "failed";
    msg.resuming = false;
    if (error.message) msg.error = error.message;
    /** @type {Notice} */
    const notice = { kind: "error", scope: "reply" };
    if (error.code) notice.code = error.code;
    if (error.message) notice.message = error.message;
    msg.notices = [notice];
  }

  /**
   * The gateway refused to start a reply: the notice to show (nothing was stored).
   * @param {Refusal} refusal @param {number} now
   */
  refuse(refusal, now) {
    this.notice = noticeForRefusal(refusal, now);
    return this.notice;
  }

  clearNotice() {
    this.notice = null;
  }

  /**
   * Drops a notice whose wait is over (a rate limit or an overload counted down to zero).
   * @param {number} now @returns {boolean} whether it was dropped
   */
  expireNotice(now) {
    const n = this.notice;
    if (n && n.retryAt !== undefined && n.retryAt <= now && (n.kind === "rate_limit" || n.kind === "error")) {
      this.notice = null;
      return true;
    }
    return false;
  }

  /** The question a regenerate asks again: the open conversation's last one, once its reply ended. */
  regenerableQuestion() {
    if (this.streamingId) return null;
    const [question, answer] = this.messages.slice(-2);
    if (!question || !answer || question.role !== "user" || answer.role !== "assistant") return null;
    return question.text;
  }

  /**
   * Replaces the last reply with a new one (the question stays): regenerate, once the gateway
   * accepted the question again.
   * @param {string} assistantId @returns {string | undefined} the id of the reply replaced
   */
  replaceLastReply(assistantId) {
    const last = this.messages.at(-1);
    if (!last || last.role !== "assistant" || last.status === "streaming") {
      throw new Error("replaceLastReply needs a finished last reply");
    }
    this.messages.pop();
    this.startReply(assistantId);
    return last.id;
  }

  /** @param {string} id */
  find(id) {
    return this.messages.find((m) => m.id === id);
  }
}
