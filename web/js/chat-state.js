// @ts-check
// Chat state, kept apart from the DOM so that it can be reasoned about (and tested) on its own.

/**
 * @typedef {{ id: string, role: "user" | "assistant", text: string,
 *             status: "streaming" | "complete" | "cancelled" | "failed", error?: string,
 *             lastEventId?: number }} ChatMessage
 * @typedef {{ id: string, title: string }} Conversation
 */

export class ChatState {
  constructor() {
    /** @type {Conversation[]} */
    this.conversations = [];
    /** @type {string | null} */
    this.conversationId = null;
    /** @type {ChatMessage[]} */
    this.messages = [];
    /** @type {string | null} id of the assistant message being streamed */
    this.streamingId = null;
  }

  /** @param {Conversation[]} list */
  setConversations(list) {
    this.conversations = list;
  }

  /** @param {string} id @param {ChatMessage[]} messages */
  openConversation(id, messages) {
    this.conversationId = id;
    this.messages = messages;
    this.streamingId = null;
  }

  /** @param {string} text @param {string} assistantId */
  startExchange(text, assistantId) {
    this.messages.push({ id: `${assistantId}-q`, role: "user", text, status: "complete" });
    this.messages.push({ id: assistantId, role: "assistant", text: "", status: "streaming" });
    this.streamingId = assistantId;
  }

  /**
   * Appends a delta once: an event id at or below the last one seen is a replay and is dropped.
   * @param {string} id @param {string} delta @param {number} eventId
   */
  appendDelta(id, delta, eventId) {
    const msg = this.find(id);
    if (!msg) return false;
    if (Number.isFinite(eventId) && msg.lastEventId !== undefined && eventId <= msg.lastEventId) return false;
    msg.text += delta;
    if (Number.isFinite(eventId)) msg.lastEventId = eventId;
    return true;
  }

  /** @param {string} id @param {"complete" | "cancelled" | "failed"} status @param {string} [error] */
  finish(id, status, error) {
    const msg = this.find(id);
    if (msg) {
      msg.status = status;
      if (error) msg.error = error;
    }
    if (this.streamingId === id) this.streamingId = null;
  }

  /** @param {string} id */
  find(id) {
    return this.messages.find((m) => m.id === id);
  }
}
