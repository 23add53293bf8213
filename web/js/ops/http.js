// @ts-check
// The console's calls to the gateway: same-origin with the session cookie, errors in the shared
// envelope. Unlike the chat page's wrapper, it keeps the error's `param` (so a form can point at
// the field the gateway refused) and reports a lost session to one handler.
import { ApiError } from "../api.js";

export class RequestError extends ApiError {
  /** @param {number} status @param {string} message @param {string | undefined} code @param {string | undefined} param */
  constructor(status, message, code, param) {
    super(status, message, code);
    this.param = param;
  }
}

/** @type {() => void} */
let onUnauthorized = () => {};

/** Called when a call answers 401: the session ended (signed out elsewhere, key revoked). @param {() => void} handler */
export function setUnauthorizedHandler(handler) {
  onUnauthorized = handler;
}

/**
 * One call; resolves to the parsed JSON body (null for an empty one).
 * @param {string} method @param {string} path @param {unknown} [body] @param {{ quiet401?: boolean }} [options]
 */
export async function request(method, path, body, options = {}) {
  /** @type {Record<string, string>} */
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, {
    method,
    credentials: "same-origin",
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  /** @type {any} */
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  if (!res.ok) {
    const err = (parsed && parsed.error) || {};
    if (res.status === 401 && !options.quiet401) onUnauthorized();
    throw new RequestError(res.status, err.message || `HTTP ${res.status}`, err.code, err.param ?? undefined);
  }
  return parsed;
}

/** @param {string} path */
export const get = (path) => request("GET", path);

/** A query string from the parameters that have a value. @param {Record<string, string | number | null | undefined>} params */
export function query(params) {
  const q = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") q.set(name, String(value));
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}
