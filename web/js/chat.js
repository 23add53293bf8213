// @ts-check
// The chat page: DOM wiring around ChatState, the gateway API, the strings and the notices.
import { marked } from "../vendor/marked.esm.js";
import DOMPurify from "../vendor/purify.es.mjs";
import * as api from "./api.js";
import { ChatState, messageFromServer } from "./chat-state.js";
import { language, languageFor, setLanguage, t, translatePage } from "./i18n.js";
import { renderNotice, tickNotices } from "./notices.js";

/**
 * Fails fast when the page and the script disagree about the markup.
 * @template {HTMLElement} T @param {string} id @param {new () => T} type @returns {T}
 */
function $(id, type) {
  const el = document.getElementById(id);
  if (!(el instanceof type)) throw new Error(`chat page: #${id} is missing or not a ${type.name}`);
  return el;
}

const ui = {
  login: $("login", HTMLElement),
  loginForm: $("login-form", HTMLFormElement),
  apiKey: $("api-key", HTMLInputElement),
  loginError: $("login-error", HTMLElement),
  app: $("app", HTMLElement),
  skip: $("skip", HTMLAnchorElement),
  sidebar: $("sidebar", HTMLElement),
  sidebarToggle: $("sidebar-toggle", HTMLButtonElement),
  backdrop: $("backdrop", HTMLElement),
  newChat: $("new-chat", HTMLButtonElement),
  conversations: $("conversations", HTMLUListElement),
  logout: $("logout", HTMLButtonElement),
  model: $("model", HTMLSelectElement),
  status: $("status", HTMLElement),
  messages: $("messages", HTMLOListElement),
  emptyHint: $("empty-hint", HTMLElement),
  newest: $("newest", HTMLButtonElement),
  notices: $("notices", HTMLElement),
  composer: $("composer", HTMLFormElement),
  query: $("query", HTMLTextAreaElement),
  send: $("send", HTMLButtonElement),
  stop: $("stop", HTMLButtonElement),
};
const main = /** @type {HTMLElement} */ (ui.app.querySelector("main"));
const langSwitches = /** @type {HTMLButtonElement[]} */ ([...document.querySelectorAll(".lang-switch")]);
const phone = window.matchMedia("(max-width: 720px)");

const LANG_KEY = "chat.lang";
const MODEL_KEY = "chat.model";

const state = new ChatState();
/** @type {Map<string, EventSource>} the streams this page follows, by reply id */
const streams = new Map();
/** @type {Map<string, number>} pending repaints of streaming replies */
const frames = new Map();
/** Follow the newest message unless the user scrolled up to read. */
let stickToBottom = true;
/** A question is on its way to the gateway (no second one until it is answered). */
let asking = false;
/** Guards against a slow answer for a conversation the user already left. */
let openTicket = 0;
let ticker = 0;

/** Model output is markdown from an untrusted source: render, then sanitize, never raw HTML. */
function renderMarkdown(/** @type {string} */ text) {
  return DOMPurify.sanitize(/** @type {string} */ (marked.parse(text, { async: false })));
}

// ---- language ---------------------------------------------------------------------------------

function storedLanguage() {
  try {
    const value = localStorage.getItem(LANG_KEY);
    return value === "en" || value === "zh" ? value : null;
  } catch {
    return null;
  }
}

/** @param {import("./i18n.js").Lang} lang */
function applyLanguage(lang) {
  setLanguage(lang);
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  translatePage(document);
  // Each switch names the other language in that language.
  for (const b of langSwitches) b.lang = lang === "zh" ? "en" : "zh-CN";
  renderConversations();
  renderAllMessages();
  renderPageNotice();
}

// ---- rendering --------------------------------------------------------------------------------

function renderConversations() {
  if (!state.conversations.length) {
    const li = document.createElement("li");
    li.className = "empty";
    li.textContent = t("sidebar.empty");
    ui.conversations.replaceChildren(li);
    return;
  }
  ui.conversations.replaceChildren(
    ...state.conversations.map((c) => {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = c.title || t("sidebar.untitled");
      button.title = c.title || t("sidebar.untitled");
      button.dataset.id = c.id;
      if (c.id === state.conversationId) button.setAttribute("aria-current", "true");
      button.addEventListener("click", () => void selectConversation(c.id));
      li.append(button);
      return li;
    }),
  );
}

/** @param {string} id */
function messageElement(id) {
  return /** @type {HTMLLIElement | null} */ (ui.messages.querySelector(`li[data-id="${CSS.escape(id)}"]`));
}

/** @param {import("./chat-state.js").ChatMessage} m */
function renderMessage(m) {
  let li = messageElement(m.id);
  if (!li) {
    li = document.createElement("li");
    li.dataset.id = m.id;
    li.className = `msg ${m.role}`;
    const body = document.createElement("div");
    body.className = "body";
    const meta = document.createElement("div");
    meta.className = "meta";
    li.append(body, meta);
    if (m.role === "assistant") {
      const notices = document.createElement("div");
      notices.className = "notices";
      const actions = document.createElement("div");
      actions.className = "actions";
      li.append(notices, actions);
    }
    ui.messages.append(li);
  }
  li.dataset.status = m.status;
  li.classList.toggle("failed", m.status === "failed");
  // Who said it, for screen readers only (CSS alt text: not part of the message's text).
  li.dataset.who = m.role === "user" ? t("msg.you") : t("msg.assistant");
  const body = /** @type {HTMLElement} */ (li.querySelector(".body"));
  if (m.role === "assistant") body.innerHTML = renderMarkdown(m.text);
  else body.textContent = m.text;
  /** @type {HTMLElement} */ (li.querySelector(".meta")).textContent =
    m.status === "streaming" ? t("msg.streaming") : m.status === "cancelled" ? t("msg.cancelled") : "";
  if (m.role === "assistant") {
    const now = Date.now();
    /** @type {HTMLElement} */ (li.querySelector(".notices")).replaceChildren(...(m.notices ?? []).map((n) => renderNotice(n, now)));
    renderActions(li, m);
  }
  ui.emptyHint.hidden = state.messages.length > 0;
  keepNewestInView();
}

/** Copy on every finished reply; regenerate on the last one. */
function renderActions(/** @type {HTMLLIElement} */ li, /** @type {import("./chat-state.js").ChatMessage} */ m) {
  const actions = /** @type {HTMLElement} */ (li.querySelector(".actions"));
  /** @type {HTMLButtonElement[]} */
  const buttons = [];
  if (m.status !== "streaming") {
    if (m.text) {
      const copy = document.createElement("button");
      copy.type = "button";
      copy.className = "secondary copy";
      copy.textContent = t("msg.copy");
      copy.setAttribute("aria-label", t("msg.copyLabel"));
      copy.addEventListener("click", () => void copyReply(m.id, copy));
      buttons.push(copy);
    }
    if (state.messages.at(-1) === m && state.regenerableQuestion() !== null) {
      const again = document.createElement("button");
      again.type = "button";
      again.className = "secondary regenerate";
      again.textContent = t("msg.regenerate");
      again.title = t("msg.regenerateLabel");
      again.disabled = asking;
      again.addEventListener("click", () => void regenerate());
      buttons.push(again);
    }
  }
  actions.replaceChildren(...buttons);
}

function refreshActions() {
  for (const m of state.messages) {
    const li = messageElement(m.id);
    if (li && m.role === "assistant") renderActions(li, m);
  }
}

function renderAllMessages() {
  ui.messages.replaceChildren();
  state.messages.forEach(renderMessage);
  ui.emptyHint.hidden = state.messages.length > 0;
  setBusy();
}

/** @param {string} id */
function schedulePaint(id) {
  if (frames.has(id)) return;
  frames.set(
    id,
    requestAnimationFrame(() => {
      frames.delete(id);
      paint(id);
    }),
  );
}

/** Repaints a reply if it is in the conversation on screen. */
function paint(/** @type {string} */ id) {
  const frame = frames.get(id);
  if (frame) cancelAnimationFrame(frame);
  frames.delete(id);
  const m = state.find(id);
  if (m) renderMessage(m);
}

function renderPageNotice() {
  const notice = state.notice;
  ui.notices.replaceChildren(
    ...(notice
      ? [
          renderNotice(notice, Date.now(), () => {
            state.clearNotice();
            renderPageNotice();
            ui.query.focus();
          }),
        ]
      : []),
  );
  if (notice?.retryAt !== undefined) startTicker();
}

/** Counts waits down once a second (a little more often, so that no second is skipped). */
function startTicker() {
  if (ticker) return;
  ticker = window.setInterval(() => {
    const now = Date.now();
    if (state.expireNotice(now)) renderPageNotice();
    tickNotices(document, now);
    if (!document.querySelector(".notice[data-retry-at]")) {
      clearInterval(ticker);
      ticker = 0;
    }
  }, 250);
}

function setBusy() {
  const streaming = state.streamingId !== null;
  ui.send.hidden = streaming;
  ui.send.disabled = asking;
  ui.stop.hidden = !streaming;
  ui.messages.setAttribute("aria-busy", String(streaming));
}

// ---- scrolling --------------------------------------------------------------------------------

function nearBottom() {
  return ui.messages.scrollHeight - ui.messages.scrollTop - ui.messages.clientHeight < 40;
}

function keepNewestInView() {
  if (stickToBottom) ui.messages.scrollTop = ui.messages.scrollHeight;
  ui.newest.hidden = stickToBottom || nearBottom();
}

ui.messages.addEventListener("scroll", () => {
  stickToBottom = nearBottom();
  ui.newest.hidden = stickToBottom;
});

// A phone's keyboard or a taller notice shrinks the pane: the newest message stays in view.
new ResizeObserver(() => keepNewestInView()).observe(ui.messages);

ui.newest.addEventListener("click", () => {
  stickToBottom = true;
  keepNewestInView();
  ui.query.focus();
});

// ---- conversations ----------------------------------------------------------------------------

async function refreshConversations() {
  const list = await api.listConversations();
  state.setConversations(
    (Array.isArray(list) ? list : list.data ?? []).map((/** @type {any} */ c) => ({ id: String(c.id), title: c.title ?? "" })),
  );
  renderConversations();
}

async function selectConversation(/** @type {string} */ id) {
  const ticket = ++openTicket;
  closeSidebar(false);
  const messages = await api.listMessages(id);
  if (ticket !== openTicket) return;
  state.openConversation(id, (Array.isArray(messages) ? messages : messages.data ?? []).map(messageFromServer));
  stickToBottom = true;
  renderConversations();
  renderAllMessages();
  renderPageNotice();
  const resumable = state.resumableId();
  if (resumable && state.resume(resumable)) {
    followReply(resumable, `/api/streams/${encodeURIComponent(resumable)}`);
    setBusy();
  }
}

/** A new chat is created on the server with its first message, so no empty ones pile up. */
function newChat() {
  ++openTicket;
  state.openConversation(null, []);
  stickToBottom = true;
  renderConversations();
  renderAllMessages();
  renderPageNotice();
  closeSidebar(false);
  ui.query.focus();
}

// ---- asking and streaming ---------------------------------------------------------------------

/**
 * The gateway refused to start a reply: a notice, and the question back in the box.
 * @param {unknown} e @param {string | null} query
 */
function refused(e, query) {
  if (e instanceof api.ApiError && e.status === 401) {
    showLogin(t("notice.signedOut"));
    return;
  }
  const refusal =
    e instanceof api.ApiError
      ? { status: e.status, code: e.code ?? undefined, message: e.message, retryAfter: e.retryAfter }
      : { status: 0, code: "network_error", message: e instanceof Error ? e.message : String(e) };
  state.refuse(refusal, Date.now());
  renderPageNotice();
  if (query !== null && !ui.query.value) ui.query.value = query;
  ui.query.focus();
}

/** @param {string} query */
async function ask(query) {
  ++openTicket; // a conversation still loading must not replace the one being asked in
  asking = true;
  setBusy();
  try {
    if (!state.conversationId) {
      const { id } = await api.createConversation();
      state.openConversation(String(id), []);
    }
    const conversationId = /** @type {string} */ (state.conversationId);
    const started = await api.sendMessage(conversationId, ui.model.value, query);
    const id = String(started.messageId);
    if (state.conversationId === conversationId) {
      state.startExchange(query, id);
      stickToBottom = true;
      renderPageNotice();
      renderMessage(/** @type {any} */ (state.messages.at(-2)));
      refreshActions();
      renderMessage(/** @type {any} */ (state.find(id)));
    } else {
      state.track(id, conversationId);
    }
    followReply(id, started.streamUrl);
    void refreshConversations();
  } catch (e) {
    refused(e, query);
  } finally {
    asking = false;
    setBusy();
  }
}

/** Re-asks the last question in the same conversation; the new reply replaces the last one (also on the server). */
async function regenerate() {
  const query = state.regenerableQuestion();
  const conversationId = state.conversationId;
  if (query === null || !conversationId || asking) return;
  asking = true;
  setBusy();
  refreshActions();
  try {
    const started = await api.regenerate(conversationId, ui.model.value);
    const id = String(started.messageId);
    if (state.conversationId === conversationId && state.regenerableQuestion() !== null) {
      const replaced = state.replaceLastReply(id);
      if (replaced) messageElement(replaced)?.remove();
      stickToBottom = true;
      renderPageNotice();
      renderMessage(/** @type {any} */ (state.find(id)));
      ui.query.focus();
    } else {
      state.track(id, conversationId);
    }
    followReply(id, started.streamUrl);
  } catch (e) {
    refused(e, null);
  } finally {
    asking = false;
    setBusy();
    refreshActions();
  }
}

/**
 * Follows a reply's stream until it ends; it goes on while another conversation is on screen.
 * @param {string} id @param {string} url
 */
function followReply(id, url) {
  const shown = () => state.find(id) !== undefined;
  const es = api.openStream(url, {
    onOpen() {
      if (shown()) ui.status.textContent = "";
    },
    onDelta(text, eventId) {
      if (state.appendDelta(id, text, eventId) && shown()) schedulePaint(id);
    },
    onFinish(data) {
      state.finishStream(id, data);
      ended(id);
    },
    onError(_message, error) {
      if (error.code === "connection_lost") {
        void recover(id);
        return;
      }
      state.failStream(id, error);
      ended(id);
    },
    onReconnecting() {
      if (shown()) ui.status.textContent = t("status.reconnecting");
    },
  });
  streams.set(id, es);
  setBusy();
}

/**
 * The browser gave up on a stream (the gateway no longer has it, or it answered with an error
 * status): the stored message says how the reply ended.
 * @param {string} id
 */
async function recover(id) {
  const conversationId = state.live.get(id)?.conversationId;
  try {
    const stored = conversationId ? await api.listMessages(conversationId) : null;
    const m = (stored?.data ?? []).find((/** @type {any} */ x) => String(x.id) === id);
    if (m && m.status !== "streaming") state.settle(id, messageFromServer(m));
    else state.failStream(id, { code: "connection_lost" });
  } catch {
    state.failStream(id, { code: "connection_lost" });
  }
  ended(id);
}

/** @param {string} id */
function ended(id) {
  streams.get(id)?.close();
  streams.delete(id);
  paint(id);
  ui.status.textContent = "";
  ui.stop.disabled = false;
  setBusy();
  refreshActions();
  void refreshConversations().catch(() => {});
}

function stopReply() {
  const id = state.streamingId;
  if (!id) return;
  ui.stop.disabled = true;
  // The stream then ends with finish_reason "cancelled" and the partial reply is kept.
  api.cancelStream(id).catch(() => {
    ui.stop.disabled = false;
  });
}

async function copyReply(/** @type {string} */ id, /** @type {HTMLButtonElement} */ button) {
  const m = state.find(id);
  if (!m) return;
  const ok = await copyText(m.text);
  button.textContent = ok ? t("msg.copied") : t("msg.copyFailed");
  ui.status.textContent = ok ? t("status.copied") : t("msg.copyFailed");
  button.focus();
  setTimeout(() => {
    button.textContent = t("msg.copy");
    if (ui.status.textContent === t("status.copied")) ui.status.textContent = "";
  }, 2000);
}

/** The clipboard API where the page may use it, else the old selection-and-copy command. */
async function copyText(/** @type {string} */ text) {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch {
    // Denied or unavailable: fall back below.
  }
  const scratch = document.createElement("textarea");
  scratch.value = text;
  scratch.setAttribute("readonly", "");
  scratch.setAttribute("aria-hidden", "true");
  scratch.className = "visually-hidden";
  document.body.append(scratch);
  scratch.select();
  let ok = false;
  try {
    ok = document.execCommand("copy");
  } catch {
    ok = false;
  }
  scratch.remove();
  return ok;
}

// ---- the sidebar on a phone -------------------------------------------------------------------

function sidebarOpen() {
  return ui.app.classList.contains("sidebar-open");
}

function openSidebar() {
  ui.app.classList.add("sidebar-open");
  ui.sidebarToggle.setAttribute("aria-expanded", "true");
  if (phone.matches) main.inert = true;
  ui.newChat.focus();
}

/** @param {boolean} returnFocus */
function closeSidebar(returnFocus) {
  if (!sidebarOpen()) return;
  ui.app.classList.remove("sidebar-open");
  ui.sidebarToggle.setAttribute("aria-expanded", "false");
  main.inert = false;
  if (returnFocus) ui.sidebarToggle.focus();
}

ui.sidebarToggle.addEventListener("click", () => (sidebarOpen() ? closeSidebar(true) : openSidebar()));
ui.backdrop.addEventListener("click", () => closeSidebar(true));
phone.addEventListener("change", () => closeSidebar(false));

// ---- sign-in ----------------------------------------------------------------------------------

async function showApp() {
  const models = await api.listModels();
  let preferred = null;
  try {
    preferred = localStorage.getItem(MODEL_KEY);
  } catch {
    preferred = null;
  }
  ui.model.replaceChildren(...models.map((/** @type {string} */ id) => new Option(id, id, false, id === preferred)));
  await refreshConversations();
  if (state.conversations.length) await selectConversation(state.conversations[0].id);
  else newChat();
  // Shown only now: a question typed while the last conversation was still loading would land in a
  // view that the load then replaces.
  ui.login.hidden = true;
  ui.app.hidden = false;
  ui.query.focus();
}

function showLogin(/** @type {string} */ message = "") {
  for (const es of streams.values()) es.close();
  streams.clear();
  state.reset();
  ++openTicket;
  renderConversations();
  renderAllMessages();
  renderPageNotice();
  ui.app.hidden = true;
  ui.login.hidden = false;
  ui.loginError.textContent = message;
  ui.apiKey.focus();
}

ui.loginForm.addEventListener("submit", async (e) => {
  e.preventDefault();
  try {
    await api.login(ui.apiKey.value);
    ui.apiKey.value = "";
    await showApp();
  } catch (err) {
    showLogin(
      err instanceof api.ApiError && err.status === 401
        ? t("login.refused")
        : t("login.failed", { message: err instanceof Error ? err.message : String(err) }),
    );
  }
});

// ---- keyboard and controls --------------------------------------------------------------------

ui.composer.addEventListener("submit", (e) => {
  e.preventDefault();
  const query = ui.query.value.trim();
  if (!query || state.streamingId || asking) return;
  ui.query.value = "";
  void ask(query);
});

ui.query.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    ui.composer.requestSubmit();
  }
});

document.addEventListener("keydown", (e) => {
  if (e.key !== "Escape" || ui.app.hidden) return;
  if (sidebarOpen()) {
    e.preventDefault();
    closeSidebar(true);
  } else if (state.streamingId) {
    e.preventDefault();
    stopReply();
  }
});

ui.skip.addEventListener("click", (e) => {
  e.preventDefault();
  closeSidebar(false);
  ui.query.focus();
});

ui.stop.addEventListener("click", () => stopReply());
ui.newChat.addEventListener("click", () => newChat());
ui.model.addEventListener("change", () => {
  try {
    localStorage.setItem(MODEL_KEY, ui.model.value);
  } catch {
    // Private mode: the choice lasts this visit only.
  }
});

for (const b of langSwitches) {
  b.addEventListener("click", () => {
    const next = language() === "zh" ? "en" : "zh";
    try {
      localStorage.setItem(LANG_KEY, next);
    } catch {
      // Private mode: the choice lasts this visit only.
    }
    applyLanguage(next);
    b.focus();
  });
}

ui.logout.addEventListener("click", async () => {
  await api.logout().catch(() => {});
  closeSidebar(false);
  showLogin();
});

applyLanguage(storedLanguage() ?? languageFor(navigator.language));

// A session cookie may already be there: try the API, and ask for a key only when it says 401.
showApp().catch((err) =>
  showLogin(err instanceof api.ApiError && err.status === 401 ? "" : t("login.failed", { message: err instanceof Error ? err.message : String(err) })),
);
