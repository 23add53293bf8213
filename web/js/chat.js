// @ts-check
// The chat page: DOM wiring around ChatState and the gateway API.
import { marked } from "../vendor/marked.esm.js";
import DOMPurify from "../vendor/purify.es.mjs";
import * as api from "./api.js";
import { ChatState } from "./chat-state.js";

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
  newChat: $("new-chat", HTMLButtonElement),
  conversations: $("conversations", HTMLUListElement),
  logout: $("logout", HTMLButtonElement),
  model: $("model", HTMLSelectElement),
  status: $("status", HTMLElement),
  messages: $("messages", HTMLOListElement),
  composer: $("composer", HTMLFormElement),
  query: $("query", HTMLTextAreaElement),
  send: $("send", HTMLButtonElement),
  stop: $("stop", HTMLButtonElement),
};

const state = new ChatState();
/** @type {EventSource | null} */
let stream = null;

/** Model output is markdown from an untrusted source: render, then sanitize, never raw HTML. */
function renderMarkdown(/** @type {string} */ text) {
  return DOMPurify.sanitize(/** @type {string} */ (marked.parse(text, { async: false })));
}

function renderConversations() {
  ui.conversations.replaceChildren(
    ...state.conversations.map((c) => {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = c.title || "New chat";
      button.setAttribute("aria-current", String(c.id === state.conversationId));
      button.addEventListener("click", () => void selectConversation(c.id));
      li.append(button);
      return li;
    }),
  );
}

function renderMessage(/** @type {import("./chat-state.js").ChatMessage} */ m) {
  let li = /** @type {HTMLLIElement | null} */ (ui.messages.querySelector(`li[data-id="${CSS.escape(m.id)}"]`));
  if (!li) {
    li = document.createElement("li");
    li.dataset.id = m.id;
    li.className = `msg ${m.role}`;
    const body = document.createElement("div");
    body.className = "body";
    const meta = document.createElement("div");
    meta.className = "meta";
    li.append(body, meta);
    ui.messages.append(li);
  }
  li.dataset.status = m.status;
  li.classList.toggle("failed", m.status === "failed");
  const body = /** @type {HTMLElement} */ (li.querySelector(".body"));
  if (m.role === "assistant") body.innerHTML = renderMarkdown(m.text);
  else body.textContent = m.text;
  const meta = /** @type {HTMLElement} */ (li.querySelector(".meta"));
  meta.textContent =
    m.status === "streaming" ? "…" : m.status === "cancelled" ? "stopped" : m.status === "failed" ? `failed: ${m.error ?? ""}` : "";
  ui.messages.scrollTop = ui.messages.scrollHeight;
}

function renderAllMessages() {
  ui.messages.replaceChildren();
  state.messages.forEach(renderMessage);
}

function setBusy(/** @type {boolean} */ busy) {
  ui.send.disabled = busy;
  ui.stop.hidden = !busy;
}

/** @param {any} m gateway message record */
function fromServer(m) {
  const status = m.status === "streaming" || m.status === "cancelled" || m.status === "failed" ? m.status : "complete";
  return { id: String(m.id), role: m.role === "user" ? "user" : "assistant", text: m.content ?? "", status };
}

async function selectConversation(/** @type {string} */ id) {
  const messages = await api.listMessages(id);
  state.openConversation(id, (Array.isArray(messages) ? messages : messages.data ?? []).map(fromServer));
  renderConversations();
  renderAllMessages();
}

async function refreshConversations() {
  const list = await api.listConversations();
  state.setConversations((Array.isArray(list) ? list : list.data ?? []).map((/** @type {any} */ c) => ({ id: String(c.id), title: c.title ?? "" })));
  renderConversations();
}

async function newConversation() {
  const { id } = await api.createConversation();
  await refreshConversations();
  await selectConversation(String(id));
}

async function send(/** @type {string} */ query) {
  if (!state.conversationId) await newConversation();
  const conversationId = /** @type {string} */ (state.conversationId);
  setBusy(true);
  ui.status.textContent = "";
  let started;
  try {
    started = await api.sendMessage(conversationId, ui.model.value, query);
  } catch (e) {
    setBusy(false);
    ui.status.textContent = e instanceof Error ? e.message : String(e);
    return;
  }
  const id = String(started.messageId);
  state.startExchange(query, id);
  renderMessage(/** @type {any} */ (state.messages.at(-2)));
  renderMessage(/** @type {any} */ (state.find(id)));
  let frame = 0;
  const paint = () => {
    frame = 0;
    renderMessage(/** @type {any} */ (state.find(id)));
  };
  stream = api.openStream(started.streamUrl, {
    onDelta(text, eventId) {
      ui.status.textContent = "";
      if (state.appendDelta(id, text, eventId) && !frame) frame = requestAnimationFrame(paint);
    },
    onFinish(data) {
      state.finish(id, data.finish_reason === "cancelled" ? "cancelled" : "complete");
      done();
    },
    onError(message) {
      state.finish(id, "failed", message);
      done();
    },
    onReconnecting() {
      ui.status.textContent = "reconnecting…";
    },
  });
  function done() {
    stream = null;
    if (frame) cancelAnimationFrame(frame);
    paint();
    setBusy(false);
    ui.status.textContent = "";
    void refreshConversations();
  }
}

async function showApp() {
  ui.login.hidden = true;
  ui.app.hidden = false;
  const models = await api.listModels();
  ui.model.replaceChildren(...models.map((/** @type {string} */ id) => new Option(id, id)));
  await refreshConversations();
  if (state.conversations.length) await selectConversation(state.conversations[0].id);
  ui.query.focus();
}

function showLogin(/** @type {string} */ message = "") {
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
    showLogin(err instanceof api.ApiError && err.status === 401 ? "That API key was not accepted." : String(err));
  }
});

ui.composer.addEventListener("submit", (e) => {
  e.preventDefault();
  const query = ui.query.value.trim();
  if (!query || state.streamingId) return;
  ui.query.value = "";
  void send(query);
});

ui.query.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    ui.composer.requestSubmit();
  }
});

ui.stop.addEventListener("click", () => {
  if (state.streamingId) void api.cancelStream(state.streamingId);
});

ui.newChat.addEventListener("click", () => void newConversation());

ui.logout.addEventListener("click", async () => {
  stream?.close();
  await api.logout().catch(() => {});
  showLogin();
});

// A session cookie may already be there: try the API, and ask for a key only when it says 401.
showApp().catch((err) => showLogin(err instanceof api.ApiError && err.status === 401 ? "" : String(err)));
