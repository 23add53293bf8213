// The chat page in a real browser against the real tiers: what a person sees when they chat.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { launchBrowser, newPage, signIn } from "./browser.mjs";
import { startStack } from "./stack.mjs";

/** @type {Awaited<ReturnType<typeof startStack>>} */
let stack;
/** @type {import("playwright-core").Browser} */
let browser;

before(async () => {
  stack = await startStack();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await stack?.stop();
});

async function signedInPage() {
  const { page, errors } = await newPage(browser);
  await signIn(page, stack.url, stack.adminKey);
  await page.locator("#app:not([hidden])").waitFor();
  return { page, errors };
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
