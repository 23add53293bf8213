// @ts-check
// Thin wrappers over the gateway's HTTP API; errors arrive in the shared envelope.

export class ApiError extends Error {
  /** @param {number} status @param {string} message @param {string | undefined} code */
  constructor(status, message, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** @param {string} path @param {RequestInit} [init] */
async function call(path, init = {}) {
  const res = await fetch(path, {
    credentials: "same-origin",
    ...init,
    headers: { Accept: "application/json", ...(init.body ? { "Content-Type": "application/json" } : {}), ...init.headers },
  });
  const text = await res.text();
  /** @type {any} */
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!res.ok) {
    const err = body && body.error;
    throw new ApiError(res.status, (err && err.message) || `HTTP ${res.status}`, err && err.code);
  }
  return body;
}

/** @param {string} apiKey */
export const login = (apiKey) => call("/api/session", { method: "POST", body: JSON.stringify({ apiKey }) });
export const logout = () => call("/api/session", { method: "DELETE" });
export const listModels = async () => (await call("/v1/models")).data.map((/** @type {any} */ m) => m.id);
export const listConversations = () => call("/api/conversations");
export const createConversation = () => call("/api/conversations", { method: "POST", body: "{}" });
/** @param {string} id */
export const listMessages = (id) => call(`/api/conversations/${encodeURIComponent(id)}/messages`);
/** @param {string} id @param {string} model @param {string} query */
export const sendMessage = (id, model, query) =>
  call(`/api/conversations/${encodeURIComponent(id)}/messages`, { method: "POST", body: JSON.stringify({ model, query }) });
/** @param {string} messageId */
export const cancelStream = (messageId) =>
  call(`/api/streams/${encodeURIComponent(messageId)}/cancel`, { method: "POST", body: "{}" });

/**
 * Opens the resumable product stream. EventSource reconnects by itself after a dropped connection
 * and sends Last-Event-ID, so the gateway replays exactly what was missed.
 * @param {string} url
 * @param {{ onDelta: (text: string, eventId: number) => void, onFinish: (data: any) => void,
 *           onError: (message: string) => void, onReconnecting: () => void }} handlers
 */
export function openStream(url, handlers) {
  const es = new EventSource(url, { withCredentials: true });
  es.addEventListener("message", (e) => {
    handlers.onDelta(JSON.parse(e.data).text, Number(e.lastEventId));
  });
  es.addEventListener("finish", (e) => {
    es.close();
    handlers.onFinish(JSON.parse(/** @type {MessageEvent} */ (e).data));
  });
  es.addEventListener("error", (e) => {
    const data = /** @type {MessageEvent} */ (e).data;
    if (data) {
      // An `event: error` sent by the gateway: the stream ended with a failure.
      es.close();
      const err = JSON.parse(data).error || {};
      handlers.onError(err.message || "the model failed");
    } else if (es.readyState === EventSource.CLOSED) {
      handlers.onError("the connection to the server was lost");
    } else {
      handlers.onReconnecting();
    }
  });
  return es;
}
