// @ts-check
// Every string the chat page shows, in English and Chinese, in one place.
import { fill, translateElements } from "./translate.js";

/** @typedef {"en" | "zh"} Lang */

const en = {
  "page.title": "Chat · self-hosted LLM",
  "login.title": "Sign in",
  "login.key": "API key",
  "login.submit": "Sign in",
  "login.refused": "That API key was not accepted.",
  "login.failed": "Could not sign in: {message}",
  "lang.switch": "中文",
  "lang.switchLabel": "切换到中文",
  "skip": "Skip to the message box",
  "sidebar.label": "Conversations",
  "sidebar.toggle": "Conversations",
  "sidebar.new": "+ New chat",
  "sidebar.untitled": "New chat",
  "sidebar.logout": "Sign out",
  "sidebar.empty": "No conversations yet.",
  "header.model": "Model",
  "messages.label": "Messages",
  "messages.empty": "Ask anything to start the conversation.",
  "messages.newest": "↓ Newest",
  "composer.label": "Message",
  "composer.placeholder": "Type a message… (Enter to send, Shift+Enter for a new line)",
  "composer.send": "Send",
  "composer.stop": "Stop",
  "composer.stopHint": "Esc stops the reply",
  "msg.you": "You",
  "msg.assistant": "Assistant",
  "msg.streaming": "Writing…",
  "msg.cancelled": "Stopped.",
  "msg.failed": "The reply failed.",
  "msg.copy": "Copy",
  "msg.copyLabel": "Copy this reply",
  "msg.copied": "Copied",
  "msg.copyFailed": "Could not copy",
  "msg.regenerate": "Regenerate",
  "msg.regenerateLabel": "Ask the last question again for a new reply",
  "status.reconnecting": "Connection lost; reconnecting…",
  "status.copied": "Reply copied to the clipboard.",
  "notice.dismiss": "Dismiss",
  "notice.rateLimit": "Too many requests: you can send again in {seconds}\u00a0s.",
  "notice.rateLimitNoTime": "Too many requests: wait a moment before sending again.",
  "notice.quota": "Your usage quota is used up. It renews in {time}; an administrator can raise it.",
  "notice.quotaNoTime": "Your usage quota is used up; an administrator can raise it.",
  "notice.promptFiltered": "Your message was not sent: it was refused by the content policy.",
  "notice.replyFiltered": "The rest of this reply was withheld by the content policy.",
  "notice.degraded": "Degraded reply: {reasons}.",
  "notice.streamError": "The reply failed: {message}",
  "notice.connectionLost": "The connection to the server was lost.",
  "notice.overloaded": "The service is busy right now. Try again in {seconds}\u00a0s.",
  "notice.overloadedNoTime": "The service is busy right now. Try again shortly.",
  "notice.readOnly": "The service is read-only for now: history stays readable, but no new replies are generated.",
  "notice.modelDisabled": "This model is switched off for now. Choose another model or try later.",
  "notice.modelUnavailable": "This model is unavailable right now. Try again in a moment.",
  "notice.modelNotAllowed": "Your API key may not use this model.",
  "notice.signedOut": "Your session has ended. Sign in again.",
  "notice.other": "Something went wrong: {message}",
  "notice.serverSaid": "Server: {message}",
  "reason.maintenance": "the service is under maintenance, so this is the operators' message rather than the model's",
  "reason.fallback_reply": "the model is unavailable, so this is a standard reply",
  "reason.streaming_off": "streaming is turned off, so the reply arrived all at once",
  "reason.model_routed": "another model answered in place of the one chosen",
  "reason.max_tokens_capped": "replies are shortened for now, so this one may be cut off",
  "reason.fallback_model": "the chosen model is unavailable, so a fallback model answered",
  "reason.replica_failover": "another server answered after the first one failed",
  "reason.unknown": "the service is running in a reduced mode",
  "time.seconds": "{n}\u00a0s",
  "time.minutes": "{n}\u00a0min",
  "time.hours": "{h}\u00a0h {m}\u00a0min",
};

/** @type {Record<keyof typeof en, string>} */
const zh = {
  "page.title": "对话 · 自托管大模型",
  "login.title": "登录",
  "login.key": "API 密钥",
  "login.submit": "登录",
  "login.refused": "该 API 密钥未被接受。",
  "login.failed": "无法登录:{message}",
  "lang.switch": "English",
  "lang.switchLabel": "Switch to English",
  "skip": "跳到输入框",
  "sidebar.label": "对话列表",
  "sidebar.toggle": "对话列表",
  "sidebar.new": "+ 新对话",
  "sidebar.untitled": "新对话",
  "sidebar.logout": "退出登录",
  "sidebar.empty": "还没有对话。",
  "header.model": "模型",
  "messages.label": "消息",
  "messages.empty": "输入任何问题开始对话。",
  "messages.newest": "↓ 最新消息",
  "composer.label": "消息",
  "composer.placeholder": "输入你的问题…(Enter 发送,Shift+Enter 换行)",
  "composer.send": "发送",
  "composer.stop": "停止",
  "composer.stopHint": "按 Esc 停止回复",
  "msg.you": "你",
  "msg.assistant": "助手",
  "msg.streaming": "正在回复…",
  "msg.cancelled": "已停止。",
  "msg.failed": "回复失败。",
  "msg.copy": "复制",
  "msg.copyLabel": "复制这条回复",
  "msg.copied": "已复制",
  "msg.copyFailed": "复制失败",
  "msg.regenerate": "重新生成",
  "msg.regenerateLabel": "重新提问上一个问题,生成新的回复",
  "status.reconnecting": "连接中断,正在重连…",
  "status.copied": "回复已复制到剪贴板。",
  "notice.dismiss": "关闭",
  "notice.rateLimit": "请求过于频繁:{seconds} 秒后可以再次发送。",
  "notice.rateLimitNoTime": "请求过于频繁:请稍候再发送。",
  "notice.quota": "你的用量配额已用完,将在 {time} 后恢复;管理员可以提高配额。",
  "notice.quotaNoTime": "你的用量配额已用完;管理员可以提高配额。",
  "notice.promptFiltered": "消息未发送:内容策略拒绝了这条消息。",
  "notice.replyFiltered": "这条回复的其余部分被内容策略拦截。",
  "notice.degraded": "降级回复:{reasons}。",
  "notice.streamError": "回复失败:{message}",
  "notice.connectionLost": "与服务器的连接已断开。",
  "notice.overloaded": "服务繁忙,请在 {seconds} 秒后重试。",
  "notice.overloadedNoTime": "服务繁忙,请稍后重试。",
  "notice.readOnly": "服务暂时处于只读状态:可以查看历史,但不会生成新的回复。",
  "notice.modelDisabled": "该模型暂时停用。请选择其他模型或稍后再试。",
  "notice.modelUnavailable": "该模型暂时不可用,请稍后再试。",
  "notice.modelNotAllowed": "你的 API 密钥无权使用该模型。",
  "notice.signedOut": "会话已结束,请重新登录。",
  "notice.other": "出错了:{message}",
  "notice.serverSaid": "服务器:{message}",
  "reason.maintenance": "服务正在维护,这是运维人员的消息而不是模型的回答",
  "reason.fallback_reply": "模型暂不可用,这是预设的回复",
  "reason.streaming_off": "流式输出已关闭,回复一次性送达",
  "reason.model_routed": "由另一个模型代替所选模型回答",
  "reason.max_tokens_capped": "回复长度暂时受限,这条回复可能被截断",
  "reason.fallback_model": "所选模型不可用,由备用模型回答",
  "reason.replica_failover": "第一台服务器出错,由另一台服务器回答",
  "reason.unknown": "服务处于降级运行状态",
  "time.seconds": "{n} 秒",
  "time.minutes": "{n} 分钟",
  "time.hours": "{h} 小时 {m} 分钟",
};

/** @typedef {keyof typeof en} MessageKey */

const catalogs = { en, zh };
/** @type {Lang} */
let current = "en";

/** The UI language for a browser language tag: zh-* is Chinese, anything else English. */
export function languageFor(/** @type {string | undefined | null} */ tag) {
  return /^zh\b/i.test(tag ?? "") ? "zh" : "en";
}

/** @param {Lang} lang */
export function setLanguage(lang) {
  current = lang;
}

export function language() {
  return current;
}

/**
 * The string for `key` in the current language, with `{name}` placeholders filled in.
 * @param {MessageKey} key @param {Record<string, string | number>} [params]
 */
export function t(key, params = {}) {
  return fill(catalogs, current, key, params);
}

/** Whether `key` names a string (used for reason tokens that come from the server). */
export function has(/** @type {string} */ key) {
  return Object.hasOwn(en, key);
}

/** A wait in words: "45 s", "3 min", "2 h 5 min". */
export function duration(/** @type {number} */ seconds) {
  const s = Math.max(0, Math.ceil(seconds));
  if (s < 120) return t("time.seconds", { n: s });
  if (s < 7200) return t("time.minutes", { n: Math.ceil(s / 60) });
  return t("time.hours", { h: Math.floor(s / 3600), m: Math.floor((s % 3600) / 60) });
}

/**
 * The reasons of a degraded reply in words; unknown tokens are shown as they came.
 * @param {string | null | undefined} reasons comma-separated tokens such as "maintenance, max_tokens_capped"
 */
export function degradedReasons(reasons) {
  const tokens = String(reasons ?? "")
    .split(",")
    .map((r) => r.trim())
    .filter(Boolean);
  const words = tokens.map((r) => (has(`reason.${r}`) ? t(/** @type {MessageKey} */ (`reason.${r}`)) : r));
  return words.length ? words.join(current === "zh" ? ";" : "; ") : t("reason.unknown");
}

/**
 * Fills the page's static text: `data-i18n` sets the text, `data-i18n-label` aria-label,
 * `data-i18n-placeholder` the placeholder, `data-i18n-title` the tooltip.
 * @param {ParentNode} root
 */
export function translatePage(root) {
  translateElements(root, t);
}
