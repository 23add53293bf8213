// @ts-check
// Thin wrappers over the gateway's HTTP API; errors arrive in the shared envelope.

export class ApiError extends Error {
  /**
   * @param {number} status @param {string} message @param {string | undefined} code
   * @param {{ type?: string, param?: string | null, retryAfter?: number, headers?: Headers }} [details]
   *   `retryAfter`: the Retry-After header in seconds, when the gateway sent one
   */
  constructor(status, message, code, details = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.type = details.type;
    this.param = details.param ?? null;
    this.retryAfter = details.retryAfter;
    this.headers = details.headers;
  }
}

/** Retry-After in seconds (it may also be an HTTP date); undefined when absent or unreadable. */
export function retryAfterSeconds(/** @type {string | null} */ value, now = Date.now()) {
  if (value === null || value.trim() === "") return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - now) / 1000));
}

/**
 * One call to the gateway with the session cookie; a non-2xx answer throws an ApiError that
 * carries the error envelope's code and the Retry-After wait.
 * @param {string} path @param {RequestInit} [init]
 */
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
    throw new ApiError(res.status, (err && err.message) || `HTTP ${res.status}`, err && err.code, {
      type: err && err.type,
      param: err && err.param,
      retryAfter: retryAfterSeconds(res.headers.get("Retry-After")),
      headers: res.headers,
    });
  }
  return body;
}

export { call as request };

/** @param {string} apiKey */
export const login = (apiKey) => call("/api/session", { method: "POST", body: JSON.stringify({ apiKey }) });
export const logout = () => call("/api/session", { method: "DELETE" });
export const getSession = () => call("/api/session");
export const listModels = async () => (await call("/v1/models")).data.map((/** @type {any} */ m) => m.id);
export const listConversations = () => call("/api/conversations");
export const createConversation = () => call("/api/conversations", { method: "POST", body: "{}" });
/** @param {string} id */
export const listMessages = (id) => call(`/api/conversations/${encodeURIComponent(id)}/messages`);
/** @param {string} id @param {string} model @param {string} query */
export const sendMessage = (id, model, query) =>
  call(`/api/conversations/${encodeURIComponent(id)}/messages`, { method: "POST", body: JSON.stringify({ model, query }) });
/**
 * Asks the conversation's last question again; the gateway replaces the last question and answer
 * with the new turn, so the old answer leaves the model's context too.
 * @param {string} id @param {string} model
 */
export const regenerate = (id, model) =>
  call(`/api/conversations/${encodeURIComponent(id)}/messages`, { method: "POST", body: JSON.stringify({ model, regenerate: true }) });
/** @param {string} messageId */
export const cancelStream = (messageId) =>
  call(`/api/streams/${encodeURIComponent(messageId)}/cancel`, { method: "POST", body: "{}" });

/**
 * Opens the resumable product stream. EventSource reconnects by itself after a dropped connection
 * and sends Last-Event-ID, so the gateway replays exactly what was missed.
 * `onError` gets the server's error object (`{message, type, code}`) for an `event: error`, and
 * `{code: "connection_lost"}` when the browser gave up on the connection.
 * @param {string} url
 * @param {{ onDelta: (text: string, eventId: number) => void, onFinish: (data: any) => void,
 *           onError: (message: string, error: { message?: string, type?: string, code?: string }) => void,
 *           onReconnecting: () => void, onOpen?: () => void }} handlers
 */
export function openStream(url, handlers) {
  const es = new EventSource(url, { withCredentials: true });
  es.addEventListener("open", () => handlers.onOpen?.());
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
      /** @type {any} */
      let err = {};
      try {
        err = JSON.parse(data).error || {};
      } catch {
        err = {};
      }
      handlers.onError(err.message || "the model failed", err);
    } else if (es.readyState === EventSource.CLOSED) {
      handlers.onError("the connection to the server was lost", { code: "connection_lost" });
    } else {
      handlers.onReconnecting();
    }
  });
  return es;
}
