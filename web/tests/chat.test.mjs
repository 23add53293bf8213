// The chat page in a real browser against the real tiers: what a person sees when they chat.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { DESKTOP, PHONE, newPage, screenshot, signIn, startStackAndBrowser, stopStackAndBrowser } from "./browser.mjs";
import { startStack } from "./stack.mjs";

/** @type {Awaited<ReturnType<typeof startStack>>} */
let stack;
/** @type {import("playwright-core").Browser} */
let browser;

before(async () => ({ stack, browser } = await startStackAndBrowser()));
after(() => stopStackAndBrowser(stack, browser));

/** @typedef {import("playwright-core").Page} Page @typedef {import("playwright-core").Locator} Locator */

/** A JSON call to the gateway with an API key. */
const gateway = (/** @type {string} */ path, /** @type {{ key?: string, method?: string, body?: unknown }} */ options = {}) =>
  stack.call(path, options);

/** A user key of its own, so that a test's conversations are its own. */
async function userKey(/** @type {string} */ name) {
  return (await gateway("/admin/keys", { method: "POST", body: { name, role: "user" } })).key;
}

/** One whole turn through the product API (the reply is read to its end, so it is stored). */
function turn(/** @type {string} */ key, /** @type {string} */ conversationId, /** @type {string} */ query) {
  return gateway("/api/chat/messages", { key, method: "POST", body: { conversationId, model: "demo-model", query } });
}

async function signedInPage({ key = stack.adminKey, viewport = DESKTOP, locale = "en-US" } = {}) {
  const { page, errors, close } = await newPage(browser, { viewport, locale });
  await signIn(page, stack.url, key);
  await page.locator("#app:not([hidden])").waitFor();
  return { page, errors, close };
}

/** Sends `text` from the message box and waits for its reply to end; returns the reply. */
async function ask(/** @type {Page} */ page, /** @type {string} */ text) {
  const replies = page.locator("li.msg.assistant");
  const n = await replies.count();
  await page.getByRole("textbox").fill(text);
  await page.keyboard.press("Enter");
  const reply = replies.nth(n);
  await reply.and(page.locator('[data-status="complete"], [data-status="failed"], [data-status="cancelled"]')).waitFor({ timeout: 60_000 });
  return reply;
}

/** An SSE body as the gateway writes it. @param {[string, any][]} events */
function sse(events) {
  return {
    status: 200,
    headers: { "content-type": "text/event-stream", "cache-control": "no-cache" },
    body: events.map(([event, data], i) => `id: ${i + 1}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`).join(""),
  };
}

const finish = (/** @type {any} */ extra = {}) => ["finish", { message_id: "m", finish_reason: "stop", usage: {}, degraded: false, ...extra }];
const delta = (/** @type {string} */ text) => ["message", { text, message_id: "m" }];

/** Answers the page's next requests matching `pattern` (POSTs only, when `postOnly`) from a queue. */
async function answerFrom(/** @type {Page} */ page, /** @type {string} */ pattern, /** @type {any[]} */ queue, postOnly = false) {
  await page.route(pattern, (route) => {
    if (postOnly && route.request().method() !== "POST") return route.fallback();
    const next = queue.shift();
    return next ? route.fulfill(next) : route.fallback();
  });
}

function jsonError(/** @type {number} */ status, /** @type {string} */ code, /** @type {string} */ message, retryAfter = /** @type {number | undefined} */ (undefined)) {
  return {
    status,
    headers: { "content-type": "application/json", ...(retryAfter === undefined ? {} : { "retry-after": String(retryAfter) }) },
    body: JSON.stringify({ error: { message, type: code === "insufficient_quota" ? "insufficient_quota" : "invalid_request_error", param: null, code } }),
  };
}

/** The element's box, asserted to lie within `outer` (a box or the viewport). */
async function assertWithin(/** @type {Locator} */ inner, /** @type {{x: number, y: number, width: number, height: number}} */ outer, /** @type {string} */ what) {
  const b = await inner.boundingBox();
  assert.ok(b, `${what} has no box (not rendered)`);
  const ok = b.x >= outer.x - 1 && b.y >= outer.y - 1 && b.x + b.width <= outer.x + outer.width + 1 && b.y + b.height <= outer.y + outer.height + 1;
  assert.ok(ok, `${what} at ${JSON.stringify(b)} is not within ${JSON.stringify(outer)}`);
}

const viewportOf = (/** @type {Page} */ page) => ({ x: 0, y: 0, .../** @type {{width: number, height: number}} */ (page.viewportSize()) });

/** The page itself never scrolls: only the sidebar list and the messages do. */
async function assertPageDoesNotScroll(/** @type {Page} */ page) {
  const { scrollHeight, scrollWidth, innerHeight, innerWidth } = await page.evaluate(() => ({
    scrollHeight: /** @type {Element} */ (document.scrollingElement).scrollHeight,
    scrollWidth: /** @type {Element} */ (document.scrollingElement).scrollWidth,
    innerHeight: window.innerHeight,
    innerWidth: window.innerWidth,
  }));
  assert.ok(scrollHeight <= innerHeight + 1, `the page grew to ${scrollHeight} px in a ${innerHeight} px window`);
  assert.ok(scrollWidth <= innerWidth + 1, `the page is ${scrollWidth} px wide in a ${innerWidth} px window`);
}

/** The newest message and its reply are in view: inside the messages pane, inside the window. */
async function assertNewestInView(/** @type {Page} */ page, /** @type {string} */ what) {
  const pane = await page.locator("#messages").boundingBox();
  assert.ok(pane);
  await assertWithin(page.locator("#messages"), viewportOf(page), `${what}: the messages pane`);
  await assertWithin(page.locator("li.msg.user").last(), pane, `${what}: the message just sent`);
  await assertWithin(page.locator("li.msg.assistant").last(), pane, `${what}: its reply`);
}

/** A key with 50 conversations, the most recent one long enough to scroll (made once). */
let crowdedKey = /** @type {Promise<string> | undefined} */ (undefined);
function crowded() {
  crowdedKey ??= (async () => {
    const key = await userKey("fifty conversations");
    const ids = [];
    for (let i = 1; i <= 50; i++) ids.push((await gateway("/api/conversations", { key, method: "POST", body: { title: `Conversation ${i}` } })).id);
    await turn(key, ids[10], "hello");
    await turn(key, ids[20], "你好");
    for (const q of ["你好", "如何保持健康?", "中国的首都是哪里?", "那法国呢?", "hello", "你是谁?"]) await turn(key, ids[0], q);
    return key;
  })();
  return crowdedKey;
}

test("a wrong API key is refused with a message and no access", async () => {
  const page = await browser.newPage();
  await page.goto(stack.url);
  await page.getByLabel("API key").fill("sk-not-a-key");
  await page.getByRole("button", { name: "Sign in" }).click();
  await assert.doesNotReject(page.getByText("That API key was not accepted.").waitFor());
  assert.equal(await page.locator("#app").isHidden(), true);
  await page.close();
});

test("a Chinese question streams a reply that stays after a reload", async () => {
  const { page, errors } = await signedInPage();
  await page.getByRole("textbox").fill("你好");
  await page.keyboard.press("Enter");
  const reply = page.locator("li.msg.assistant").last();
  await reply.and(page.locator('[data-status="complete"]')).waitFor({ timeout: 120_000 });
  const text = (await reply.locator(".body").innerText()).trim();
  assert.ok(text.length > 0, "the reply is empty");
  assert.ok(!text.includes("\ufffd"), `a character was garbled: ${text}`);
  assert.equal(await page.locator("li.msg.user").last().innerText(), "你好");

  await page.reload();
  await page.locator("li.msg.assistant").last().waitFor();
  assert.equal((await page.locator("li.msg.assistant .body").last().innerText()).trim(), text);
  assert.deepEqual(errors, []);
  await page.close();
});

test("model output is rendered as markdown and sanitized, never as raw HTML", async () => {
  const { page } = await signedInPage();
  // The demo model cannot be made to write HTML on cue, so the stream itself is replaced here:
  // what is under test is the page's rendering of whatever a model sends.
  const evil = "**bold** <img src=x onerror=\"window.__pwned=1\"> <script>window.__pwned=2</script>";
  await page.route("**/api/streams/**", (route) =>
    route.fulfill({
      status: 200,
      headers: { "content-type": "text/event-stream", "cache-control": "no-cache" },
      body:
        `id: 1\nevent: message\ndata: ${JSON.stringify({ text: evil, message_id: "m" })}\n\n` +
        `id: 2\nevent: finish\ndata: ${JSON.stringify({ message_id: "m", finish_reason: "stop", usage: {}, degraded: false })}\n\n`,
    }),
  );
  await page.getByRole("textbox").fill("render this");
  await page.keyboard.press("Enter");
  const body = page.locator('li.msg.assistant[data-status="complete"] .body').last();
  await body.waitFor();
  assert.equal(await body.locator("strong").innerText(), "bold");
  assert.equal(await body.locator("script").count(), 0);
  assert.equal(await body.locator("img[onerror]").count(), 0);
  assert.equal(await page.evaluate(() => /** @type {any} */ (window).__pwned), undefined);
  await page.close();
});

test("with 50 conversations on a desktop the page stays one screen: the list scrolls, new chat and model stay, the newest message shows", async () => {
  const key = await crowded();
  const { page, errors, close } = await signedInPage({ key, viewport: DESKTOP });
  await page.locator("#conversations button").nth(49).waitFor({ state: "attached" });
  await page.locator('li.msg.assistant[data-status="complete"]').nth(5).waitFor();
  assert.equal(await page.locator("#conversations button").count(), 50);
  await assertPageDoesNotScroll(page);
  const list = await page.locator("#conversations").evaluate((ul) => ({ scroll: ul.scrollHeight, client: ul.clientHeight }));
  assert.ok(list.scroll > list.client, "50 conversations should overflow the list, which scrolls on its own");
  const pane = await page.locator("#messages").evaluate((ol) => ({ scroll: ol.scrollHeight, client: ol.clientHeight }));
  assert.ok(pane.scroll > pane.client, "the conversation should be longer than the pane for this test to mean something");

  await ask(page, "你好");
  await assertPageDoesNotScroll(page);
  await assertNewestInView(page, "desktop");
  await assertWithin(page.getByRole("button", { name: "+ New chat" }), viewportOf(page), "the new-chat button");
  await assertWithin(page.getByLabel("Model"), viewportOf(page), "the model picker");

  // Scrolled up to read, the page offers the way back down.
  await page.locator("#messages").evaluate((ol) => ol.scrollTo({ top: 0 }));
  await page.getByRole("button", { name: "↓ Newest" }).click();
  await assertNewestInView(page, "after the newest button");

  // Scrolling the list down to the oldest conversation leaves the new-chat button where it was.
  await page.locator("#conversations button").nth(49).scrollIntoViewIfNeeded();
  await assertWithin(page.getByRole("button", { name: "+ New chat" }), viewportOf(page), "the new-chat button, list scrolled");
  await assertPageDoesNotScroll(page);
  assert.deepEqual(errors, []);
  await close();
});

test("with 50 conversations on a phone the sidebar folds behind a toggle and the message box gets the width", async () => {
  const key = await crowded();
  const { page, errors, close } = await signedInPage({ key, viewport: PHONE });
  await page.locator('li.msg.assistant[data-status="complete"]').nth(5).waitFor();
  const toggle = page.getByRole("button", { name: "Conversations" });
  assert.equal(await toggle.getAttribute("aria-expanded"), "false");
  assert.equal(await page.getByRole("button", { name: "+ New chat" }).isVisible(), false);
  const box = await page.getByRole("textbox").boundingBox();
  assert.ok(box && box.width >= PHONE.width * 0.6, `the message box is ${box?.width} px wide on a ${PHONE.width} px screen`);

  await ask(page, "如何保持健康?");
  await assertPageDoesNotScroll(page);
  await assertNewestInView(page, "phone");

  // Keyboard: with the sidebar folded, Tab goes from the toggle to the model picker, not into it.
  await toggle.focus();
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement?.id), "model");

  await toggle.click();
  assert.equal(await toggle.getAttribute("aria-expanded"), "true");
  await assertWithin(page.getByRole("button", { name: "+ New chat" }), viewportOf(page), "the new-chat button, one toggle away");
  const list = await page.locator("#conversations").evaluate((ul) => ({ scroll: ul.scrollHeight, client: ul.clientHeight }));
  assert.ok(list.scroll > list.client, "the list scrolls on its own inside the open sidebar");
  await assertPageDoesNotScroll(page);
  await page.keyboard.press("Escape");
  assert.equal(await toggle.getAttribute("aria-expanded"), "false");
  assert.equal(await page.evaluate(() => document.activeElement?.id), "sidebar-toggle");

  await toggle.click();
  await page.getByRole("button", { name: "+ New chat" }).click();
  assert.equal(await toggle.getAttribute("aria-expanded"), "false");
  assert.equal(await page.locator("li.msg").count(), 0);
  assert.equal(await page.evaluate(() => document.activeElement?.id), "query");

  // The narrowest screen the page must work on.
  await page.setViewportSize({ width: 360, height: 740 });
  await ask(page, "你好");
  await assertPageDoesNotScroll(page);
  await assertNewestInView(page, "360 px");
  const narrow = await page.getByRole("textbox").boundingBox();
  assert.ok(narrow && narrow.width >= 200, `the message box is ${narrow?.width} px wide on a 360 px screen`);
  assert.deepEqual(errors, []);
  await close();
});

test("refusals show a notice: exhausted quota, refused prompt, rate limit counting down, overload (server text stays text)", async () => {
  const key = await userKey("refusals");
  const { page, errors, close } = await signedInPage({ key });
  const evil = 'too busy <img src=x onerror="window.__pwned=3">';
  await answerFrom(page, "**/api/conversations/*/messages", [
    jsonError(429, "insufficient_quota", "this API key has used its 1000 tokens for the day", 7200),
    jsonError(400, "content_filter", "the request was refused by the content policy (secrets)"),
    jsonError(429, "rate_limit_exceeded", "rate limit of 2 requests per minute reached", 3),
    jsonError(503, "overloaded", evil, 9),
  ], true);
  const notices = page.locator("#notices .notice");

  await page.getByRole("textbox").fill("first question");
  await page.keyboard.press("Enter");
  const quota = page.locator('.notice[data-kind="quota"][role="alert"]');
  await quota.waitFor();
  assert.match(await quota.innerText(), /quota is used up[\s\S]*2\sh 0\smin/);
  assert.equal(await page.getByRole("textbox").inputValue(), "first question", "a refused question goes back into the box");

  await page.keyboard.press("Enter");
  const filtered = page.locator('.notice[data-kind="content_filter"][role="alert"]');
  await filtered.waitFor();
  assert.match(await filtered.innerText(), /content policy/);
  assert.equal(await notices.count(), 1, "a new refusal replaces the last notice");

  await page.keyboard.press("Enter");
  const limited = page.locator('.notice[data-kind="rate_limit"][role="alert"]');
  await limited.waitFor();
  assert.match(await limited.locator(".notice-text").innerText(), /again in 3\ss/);
  await page.waitForFunction(() => /again in [12]\ss/.test(document.querySelector('.notice[data-kind="rate_limit"] .notice-text')?.textContent ?? ""));
  await limited.waitFor({ state: "detached", timeout: 5000 });

  await page.keyboard.press("Enter");
  const busy = page.locator('.notice[data-kind="error"][data-code="overloaded"][role="alert"]');
  await busy.waitFor();
  assert.match(await busy.innerText(), /busy[\s\S]*9\ss/);
  assert.ok((await busy.innerText()).includes(evil), "the server's words are shown as they are, as text");
  assert.equal(await page.locator(".notice img").count(), 0);
  assert.equal(await page.evaluate(() => /** @type {any} */ (window).__pwned), undefined);

  await busy.getByRole("button", { name: "Dismiss" }).click();
  assert.equal(await notices.count(), 0);
  assert.equal(await page.locator("li.msg").count(), 0, "nothing was added to the conversation");
  assert.deepEqual(errors, []);
  await close();
});

test("replies show their notices: degraded with the reason in words, cut by content rules, and a failed stream (server text stays text)", async () => {
  const key = await userKey("reply notices");
  const { page, errors, close } = await signedInPage({ key });
  const evil = 'upstream failed <img src=x onerror="window.__pwned=4">';
  await answerFrom(page, "**/api/streams/**", [
    sse([delta("Back at 17:00."), finish({ degraded: true, degraded_reason: "maintenance" })]),
    sse([delta("The first part"), finish({ degraded: true, degraded_reason: "streaming_off, max_tokens_capped" })]),
    sse([delta("Here is the card number "), finish({ finish_reason: "content_filter" })]),
    sse([delta("Half a rep"), ["error", { message_id: "m", error: { message: evil, type: "server_error", code: "upstream_error" } }]]),
  ]);

  const maintenance = await ask(page, "one");
  const degraded = maintenance.locator('.notice[data-kind="degraded"][role="status"]');
  assert.match(await degraded.innerText(), /Degraded reply: the service is under maintenance/);
  assert.equal(await maintenance.locator(".body").innerText(), "Back at 17:00.");

  const two = await ask(page, "two");
  assert.match(await two.locator('.notice[data-kind="degraded"]').innerText(), /streaming is turned off[\s\S]*shortened/);

  const cut = await ask(page, "three");
  assert.equal(await cut.getAttribute("data-status"), "complete");
  assert.match(await cut.locator('.notice[data-kind="content_filter"]').innerText(), /withheld by the content policy/);

  const failed = await ask(page, "four");
  assert.equal(await failed.getAttribute("data-status"), "failed");
  const error = failed.locator('.notice[data-kind="error"][role="alert"]');
  assert.ok((await error.innerText()).includes(evil), "the error's words are shown as text");
  assert.equal(await page.locator("li.msg img").count(), 0);
  assert.equal(await page.evaluate(() => /** @type {any} */ (window).__pwned), undefined);
  // Each notice stays with its own reply.
  assert.equal(await page.locator("li.msg.assistant .notice").count(), 4);
  assert.deepEqual(errors, []);
  await close();
});

test("a Chinese browser gets the page in Chinese, and the switch changes it and is remembered", async () => {
  const key = await userKey("中文");
  const { page, errors, close } = await newPage(browser, { locale: "zh-CN" });
  await page.goto(stack.url);
  assert.equal(await page.locator("html").getAttribute("lang"), "zh-CN");
  await page.getByLabel("API 密钥").fill(key);
  await page.getByRole("button", { name: "登录", exact: true }).click();
  await page.locator("#app:not([hidden])").waitFor();
  assert.equal(await page.getByRole("button", { name: "+ 新对话" }).isVisible(), true);
  await answerFrom(page, "**/api/streams/**", [sse([delta("17:00 恢复。"), finish({ degraded: true, degraded_reason: "maintenance" })])]);
  const reply = await ask(page, "你好");
  const notice = reply.locator('.notice[data-kind="degraded"]');
  assert.match(await notice.innerText(), /降级回复:服务正在维护/);

  await page.getByRole("button", { name: "Switch to English" }).click();
  assert.equal(await page.locator("html").getAttribute("lang"), "en");
  assert.match(await notice.innerText(), /maintenance/);
  assert.equal(await page.getByRole("button", { name: "Send" }).isVisible(), true);
  await page.reload();
  await page.locator("#app:not([hidden])").waitFor();
  assert.equal(await page.getByRole("button", { name: "+ New chat" }).isVisible(), true, "the choice outlives a reload");
  assert.deepEqual(errors, []);
  await close();
});

test("copy puts the reply on the clipboard (also without the clipboard API); regenerate replaces the last reply", async () => {
  const key = await userKey("copy and regenerate");
  const { page, errors, close } = await signedInPage({ key });
  await page.context().grantPermissions(["clipboard-read", "clipboard-write"], { origin: stack.url });
  const reply = await ask(page, "你好");
  const text = (await reply.locator(".body").innerText()).trim();
  const copy = reply.getByRole("button", { name: "Copy this reply" });
  await copy.click();
  await page.waitForFunction(() => document.querySelector("li.msg.assistant .copy")?.textContent === "Copied");
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), text);

  const firstId = await reply.getAttribute("data-id");
  const asked = page.waitForRequest((r) => r.method() === "POST" && /\/api\/conversations\/[^/]+\/messages$/.test(r.url()));
  await reply.getByRole("button", { name: "Regenerate" }).click();
  assert.deepEqual((await asked).postDataJSON().regenerate, true, "regenerate asks the gateway to replace the last answer");
  const fresh = page.locator("li.msg.assistant").last();
  await page.waitForFunction((id) => {
    const last = [...document.querySelectorAll("li.msg.assistant")].at(-1);
    return last instanceof HTMLElement && last.dataset.id !== id && last.dataset.status === "complete";
  }, firstId);
  assert.equal(await page.locator(`li[data-id="${firstId}"]`).count(), 0, "the old reply is replaced in the view");
  assert.equal(await page.locator("li.msg.user").count(), 1);
  assert.equal(await page.locator("li.msg.assistant").count(), 1);
  assert.ok((await fresh.locator(".body").innerText()).trim().length > 0);
  await page.reload();
  await page.locator('li.msg.assistant[data-status="complete"]').last().waitFor();
  assert.equal(await page.locator("li.msg.user").count(), 1, "after a reload, one question");
  assert.equal(await page.locator("li.msg.assistant").count(), 1, "and the new answer only");
  assert.deepEqual(errors, []);
  await close();

  // Where the clipboard API is missing (plain http on another host), the old copy command is used.
  const old = await signedInPage({ key });
  await old.page.addInitScript(() => {
    Object.defineProperty(Navigator.prototype, "clipboard", { get: () => undefined });
    const execCommand = document.execCommand.bind(document);
    document.execCommand = (command, ...rest) => {
      const el = /** @type {HTMLTextAreaElement} */ (document.activeElement);
      /** @type {any} */ (window).__copied = el.value.slice(el.selectionStart, el.selectionEnd);
      return execCommand(command, ...rest) || true;
    };
  });
  await old.page.reload();
  const shown = old.page.locator('li.msg.assistant[data-status="complete"]').last();
  await shown.getByRole("button", { name: "Copy this reply" }).click();
  await old.page.waitForFunction(() => /** @type {any} */ (window).__copied !== undefined);
  assert.equal(await old.page.evaluate(() => /** @type {any} */ (window).__copied), (await shown.locator(".body").innerText()).trim());
  assert.equal(await shown.locator(".copy").innerText(), "Copied");
  await old.close();
});

test("keyboard: Tab reaches the message box, Enter sends, Esc stops the reply", async () => {
  const key = await userKey("keyboard");
  const { page, errors, close } = await signedInPage({ key });
  await ask(page, "你好");

  // The first stop of the page, just before the sidebar's list, leads straight to the message box.
  await page.getByRole("button", { name: "+ New chat" }).focus();
  await page.keyboard.press("Shift+Tab");
  const skip = page.getByRole("link", { name: "Skip to the message box" });
  assert.equal(await skip.evaluate((el) => el === document.activeElement), true);
  await assertWithin(skip, viewportOf(page), "the focused skip link");
  await page.keyboard.press("Enter");
  assert.equal(await page.evaluate(() => document.activeElement?.id), "query");

  // And plain Tab from the model picker gets there too, through visible controls only.
  await page.getByLabel("Model").focus();
  const path = [];
  for (let i = 0; i < 10 && (await page.evaluate(() => document.activeElement?.id)) !== "query"; i++) {
    await page.keyboard.press("Tab");
    path.push(await page.evaluate(() => {
      const el = /** @type {HTMLElement} */ (document.activeElement);
      const r = el.getBoundingClientRect();
      return { what: el.id || el.className || el.tagName, visible: r.width > 0 && r.height > 0 && r.bottom > 0 && r.top < innerHeight };
    }));
  }
  assert.equal(await page.evaluate(() => document.activeElement?.id), "query", `Tab path: ${JSON.stringify(path)}`);
  assert.ok(path.every((p) => p.visible), `Tab went through something hidden: ${JSON.stringify(path)}`);

  // A reply that is still coming: the stream is held until the page asks to cancel, then ends the
  // way the gateway ends a cancelled one.
  /** @type {(url: string) => void} */
  let sawCancel = () => {};
  const cancel = new Promise((resolve) => (sawCancel = resolve));
  page.on("request", (r) => {
    if (r.method() === "POST" && /\/api\/streams\/[^/]+\/cancel$/.test(r.url())) sawCancel(r.url());
  });
  await page.route("**/api/streams/*", async (route) => {
    await cancel;
    await route.fulfill(sse([delta("保持健康需要"), finish({ finish_reason: "cancelled" })]));
  });
  await page.keyboard.type("如何保持健康?");
  await page.keyboard.press("Enter");
  const reply = page.locator("li.msg.assistant").nth(1);
  await reply.and(page.locator('[data-status="streaming"]')).waitFor();
  assert.equal(await page.getByRole("button", { name: "Stop" }).isVisible(), true);
  await page.keyboard.press("Escape");
  const url = await cancel;
  assert.ok(url.includes(/** @type {string} */ (await reply.getAttribute("data-id"))), `cancelled ${url}`);
  await reply.and(page.locator('[data-status="cancelled"]')).waitFor();
  assert.match(await reply.innerText(), /Stopped/);
  assert.equal(await page.getByRole("button", { name: "Send" }).isVisible(), true);
  assert.deepEqual(errors, []);
  await close();
});

test("screenshots: a conversation the demo model answers well, on a desktop and on a phone", async () => {
  const key = await userKey("screenshots");
  for (const q of ["hello", "什么是人工智能?", "How do I learn programming?"]) {
    await turn(key, (await gateway("/api/conversations", { key, method: "POST", body: {} })).id, q);
  }
  const desktop = await signedInPage({ key });
  await desktop.page.getByRole("button", { name: "+ New chat" }).click();
  for (const q of ["你好", "如何保持健康?", "中国的首都是哪里?", "那法国呢?"]) {
    assert.equal(await (await ask(desktop.page, q)).getAttribute("data-status"), "complete");
  }
  await desktop.page.locator("#conversations button").nth(3).waitFor();
  await desktop.page.getByRole("textbox").focus();
  await screenshot(desktop.page, "chat-desktop");
  await desktop.close();

  const phone = await signedInPage({ key, viewport: PHONE, locale: "zh-CN" });
  await phone.page.locator('li.msg.assistant[data-status="complete"]').nth(3).waitFor();
  await screenshot(phone.page, "chat-phone");
  assert.deepEqual([...desktop.errors, ...phone.errors], []);
  await phone.close();
});
