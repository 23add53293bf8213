// @ts-check
// The console's calls to the gateway: the chat page's wrapper (same-origin with the session cookie,
// errors as ApiError with the envelope's code and param), plus one handler for a lost session.
import { ApiError, request as call } from "../api.js";

export { ApiError };

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
  try {
    return await call(path, { method, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    if (e instanceof ApiError && e.status === 401 && !options.quiet401) onUnauthorized();
    throw e;
  }
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
