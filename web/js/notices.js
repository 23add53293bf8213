// @ts-check
// Notices as elements: `.notice` with `data-kind` and a role (alert for errors, status otherwise).
// Server text goes in as text nodes only; a wait counts down in place.
import { degradedReasons, duration, t } from "./i18n.js";

/** @typedef {import("./chat-state.js").Notice} Notice */

/** Seconds left until `retryAt`, rounded up; undefined without a wait. */
export function secondsLeft(/** @type {Notice} */ notice, /** @type {number} */ now) {
  return notice.retryAt === undefined ? undefined : Math.max(0, Math.ceil((notice.retryAt - now) / 1000));
}

/** The notice's main sentence in the current language. */
export function noticeText(/** @type {Notice} */ notice, /** @type {number} */ now) {
  const seconds = secondsLeft(notice, now);
  switch (notice.kind) {
    case "rate_limit":
      return seconds === undefined ? t("notice.rateLimitNoTime") : t("notice.rateLimit", { seconds });
    case "quota":
      return seconds === undefined ? t("notice.quotaNoTime") : t("notice.quota", { time: duration(seconds) });
    case "degraded":
      return t("notice.degraded", { reasons: degradedReasons(notice.reasons) });
    case "content_filter":
      return notice.scope === "reply" ? t("notice.replyFiltered") : t("notice.promptFiltered");
    default:
      return errorText(notice, seconds);
  }
}

/** @param {Notice} notice @param {number | undefined} seconds */
function errorText(notice, seconds) {
  switch (notice.code) {
    case "overloaded":
    case "model_overloaded":
    case "rate_limiter_unavailable":
    case "moderation_unavailable":
      return seconds === undefined ? t("notice.overloadedNoTime") : t("notice.overloaded", { seconds });
    case "read_only":
      return t("notice.readOnly");
    case "model_disabled":
      return t("notice.modelDisabled");
    case "model_unavailable":
      return t("notice.modelUnavailable");
    case "model_not_allowed":
      return t("notice.modelNotAllowed");
    case "connection_lost":
      return t("notice.connectionLost");
    default:
      if (!notice.message) return t("msg.failed");
      return notice.scope === "reply" ? t("notice.streamError", { message: notice.message }) : t("notice.other", { message: notice.message });
  }
}

/** Whether the server's own words add something to the sentence (they are shown under it). */
function showsServerText(/** @type {Notice} */ notice) {
  if (!notice.message) return false;
  // These sentences already quote the message.
  if (notice.kind === "error" && !isKnownErrorCode(notice.code)) return false;
  return true;
}

function isKnownErrorCode(/** @type {string | undefined} */ code) {
  return ["overloaded", "model_overloaded", "rate_limiter_unavailable", "moderation_unavailable", "read_only",
    "model_disabled", "model_unavailable", "model_not_allowed", "connection_lost"].includes(code ?? "");
}

/**
 * A notice element; `onDismiss` adds a close button (page-level notices).
 * @param {Notice} notice @param {number} now @param {(() => void) | undefined} [onDismiss]
 */
export function renderNotice(notice, now, onDismiss) {
  const el = document.createElement("div");
  el.className = `notice notice-${notice.kind.replace("_", "-")}`;
  el.dataset.kind = notice.kind;
  if (notice.code) el.dataset.code = notice.code;
  el.setAttribute("role", notice.kind === "degraded" ? "status" : "alert");
  const text = document.createElement("p");
  text.className = "notice-text";
  text.textContent = noticeText(notice, now);
  el.append(text);
  if (notice.retryAt !== undefined) el.dataset.retryAt = String(notice.retryAt);
  if (showsServerText(notice)) {
    const detail = document.createElement("p");
    detail.className = "notice-detail";
    detail.textContent = t("notice.serverSaid", { message: /** @type {string} */ (notice.message) });
    el.append(detail);
  }
  if (onDismiss) {
    const close = document.createElement("button");
    close.type = "button";
    close.className = "notice-dismiss icon";
    close.textContent = "×";
    close.setAttribute("aria-label", t("notice.dismiss"));
    close.addEventListener("click", onDismiss);
    el.append(close);
  }
  // Kept on the element so that the countdown can rewrite the sentence without the state.
  noticeOf.set(el, notice);
  return el;
}

/** @type {WeakMap<Element, Notice>} */
const noticeOf = new WeakMap();

/**
 * Rewrites the sentence of every counting-down notice under `root`.
 * @param {ParentNode} root @param {number} now
 */
export function tickNotices(root, now) {
  for (const el of root.querySelectorAll(".notice[data-retry-at]")) {
    const notice = noticeOf.get(el);
    const text = el.querySelector(".notice-text");
    if (notice && text) {
      const sentence = noticeText(notice, now);
      if (text.textContent !== sentence) {
        // Announced once when it appears; a screen reader need not read out every second after.
        text.setAttribute("aria-live", "off");
        text.textContent = sentence;
      }
    }
  }
}
