// The chat page through nginx in front of two gateways (the compose `scale` profile): every request
// goes round robin, so a signed-in page is served by both gateways and must not notice.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { newPage, screenshot, signIn, startStackAndBrowser, stopStackAndBrowser } from "./browser.mjs";
import { startStack } from "./stack.mjs";

const HELLO_REPLY = "你好!我是人工智能助手,很高兴见到你,欢迎问我任何问题。";
const MESSAGES = 5;

/** @type {Awaited<ReturnType<typeof startStack>>} */
let stack;
/** @type {import("playwright-core").Browser} */
let browser;

before(async () => ({ stack, browser } = await startStackAndBrowser({ scale: true })));
after(() => stopStackAndBrowser(stack, browser));

test("through nginx and two gateways, a signed-in chat page gets every answer and still shows the conversation after reloads", async () => {
  const { key } = await stack.call("/admin/keys", { method: "POST", body: { name: "chat through nginx", role: "user" } });
  const { page, errors, close } = await newPage(browser);
  // Every refusal the page meets once signed in (before, its probe for a session is refused, as it
  // should be), for the failure message: which request, and what the gateway said.
  /** @type {string[]} */
  const refusals = [];
  let signedIn = false;
  page.on("response", async (res) => {
    const request = `${res.request().method()} ${new URL(res.url()).pathname}`;
    signedIn ||= request === "POST /api/session" && res.ok();
    if (!signedIn || res.status() < 400) return;
    refusals.push(`${request} -> ${res.status()} ${await res.text().catch(() => "")}`);
  });
  const signedOut = page.locator("#login:not([hidden])");
  const notice = page.locator("#notices .notice"); // a question the gateway refused
  const seen = () => `refusals: ${JSON.stringify(refusals, null, 1)}`;

  await signIn(page, stack.url, key);
  // Signing in ends with the app shown, or with the form back and a reason under it.
  await page.locator("#app:not([hidden])").or(page.locator("#login-error").filter({ hasText: /\S/ })).first().waitFor();
  assert.equal(await page.locator("#app").isVisible(), true, `signing in failed; ${seen()}`);
  const replies = page.locator("li.msg.assistant");
  for (let i = 0; i < MESSAGES; i++) {
    await page.getByRole("textbox").fill("你好");
    await page.keyboard.press("Enter");
    const ended = replies.nth(i).and(page.locator('[data-status="complete"], [data-status="failed"], [data-status="cancelled"]'));
    // A page signed out by a refused request shows the sign-in form and waits there: no reply comes.
    await ended.or(signedOut).or(notice).first().waitFor({ timeout: 60_000 });
    assert.equal(await signedOut.isVisible(), false, `message ${i + 1} signed the page out; ${seen()}`);
    assert.deepEqual(await notice.allInnerTexts(), [], `message ${i + 1} was refused; ${seen()}`);
    assert.equal(await replies.nth(i).getAttribute("data-status"), "complete", `reply ${i + 1}; ${seen()}`);
    assert.equal((await replies.nth(i).locator(".body").innerText()).trim(), HELLO_REPLY);
  }

  // Each reload asks both gateways again (the session, the conversation list, the messages).
  for (let reload = 1; reload <= 2; reload++) {
    await page.reload();
    await page.locator("#app:not([hidden])").or(signedOut).first().waitFor();
    assert.equal(await signedOut.isVisible(), false, `reload ${reload} signed the page out; ${seen()}`);
    await replies.nth(MESSAGES - 1).waitFor();
    assert.equal(await page.locator("li.msg.user").count(), MESSAGES, `after reload ${reload}`);
    assert.deepEqual(
      (await replies.locator(".body").allInnerTexts()).map((t) => t.trim()),
      Array(MESSAGES).fill(HELLO_REPLY),
      `after reload ${reload}`,
    );
  }
  await screenshot(page, "chat-through-nginx");
  assert.deepEqual(refusals, []);
  assert.deepEqual(errors, []);
  await close();
});
