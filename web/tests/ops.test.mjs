// The ops console in a real browser against the real tiers: what an operator sees and does, and
// what the chat page shows after they did it.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { DESKTOP, PHONE, newPage, screenshot, signIn, startStackAndBrowser, stopStackAndBrowser } from "./browser.mjs";
import { startStack } from "./stack.mjs";

/** @type {Awaited<ReturnType<typeof startStack>>} */
let stack;
/** @type {import("playwright-core").Browser} */
let browser;

// One generation at a time for the model, so that a test can make requests wait for it; the others
// only queue briefly behind each other.
const GATEWAY_PROPS = { "gateway.limits.model-in-flight.demo-model": 1, "gateway.limits.model-queue-wait": "60s" };

before(async () => ({ stack, browser } = await startStackAndBrowser({ gatewayProps: GATEWAY_PROPS })));
after(() => stopStackAndBrowser(stack, browser));

/** Calls the gateway from the test with a key (the admin key unless told). @param {string} method @param {string} path @param {unknown} [body] */
const api = (method, path, body, key = stack.adminKey) => stack.call(path, { method, body, key });

/** One short OpenAI-style chat with a key; the reply's body. @param {string} key */
const chat = (key) => api("POST", "/v1/chat/completions", { model: "demo-model", messages: [{ role: "user", content: "你好" }], max_tokens: 32 }, key);

/** Polls a condition the test cannot be told about (a usage record written in the background). */
async function until(/** @type {() => Promise<boolean>} */ check, /** @type {string} */ what, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The console signed in with the admin key. */
async function consolePage(viewport = DESKTOP) {
  const p = await newPage(browser, { viewport });
  await signIn(p.page, `${stack.url}/ops`, stack.adminKey);
  await p.page.getByRole("tab", { name: "Live" }).waitFor();
  return p;
}

/** The chat page's message box. @param {import("playwright-core").Page} page */
const composer = (page) => page.locator("#app").getByRole("textbox");

/**
 * Opens the chat page, signing in with `key` unless the session cookie already lets it in.
 * @param {import("playwright-core").Page} page @param {string} key
 */
async function openChat(page, key) {
  await page.goto(stack.url);
  // The message box, not the key field (a password input counts as a textbox too).
  const box = composer(page);
  const keyField = page.getByLabel(/API key|API 密钥/);
  await box.or(keyField).filter({ visible: true }).first().waitFor();
  if (await keyField.isVisible()) {
    await keyField.fill(key);
    await page.getByRole("button", { name: /Sign in|登录/ }).click();
  }
  await box.waitFor();
  // The page is still loading its conversations when the box appears; typing then races it.
  await page.waitForLoadState("networkidle");
}

/** Sends a message on the chat page and waits for the finished reply. @param {import("playwright-core").Page} page */
async function send(page, text = "你好") {
  const replies = page.locator("li.msg.assistant");
  const count = await replies.count();
  await composer(page).fill(text);
  await page.keyboard.press("Enter");
  const reply = replies.nth(count);
  await reply.and(page.locator('[data-status="complete"]')).waitFor({ timeout: 60_000 });
  return reply;
}

/** The number in a breaker row's "Calls in window" cell (0 while the row is not there). @param {import("playwright-core").Page} page */
async function modelBreakerCalls(page) {
  const cell = page.locator('#live-breakers tr[data-breaker="model:demo-model"] .calls');
  return (await cell.count()) ? Number(await cell.innerText()) : 0;
}

// First, while this stack has served no chat: the model's breaker and the rates start from nothing.
test("the live view shows the replica and the model breaker, and its numbers move with traffic", async () => {
  const { page, errors, close } = await consolePage();
  const replica = page.locator("#live-replicas tbody tr").first();
  await replica.waitFor();
  assert.match(await replica.innerText(), /127\.0\.0\.1/);
  assert.equal(await replica.locator(".badge").first().innerText(), "ready");
  assert.equal(await replica.locator("[data-state]").innerText(), "closed");
  // No replica has failed mid-answer on this stack.
  assert.match(await page.locator("#live-continued").innerText(), /continued on another replica.*: 0$/);
  const callsBefore = await modelBreakerCalls(page);

  for (let i = 0; i < 3; i++) await chat(stack.adminKey);

  // The view refreshes by itself: no reload, no click.
  await page.waitForFunction(
    (n) => Number(document.querySelector('#live-breakers tr[data-breaker="model:demo-model"] .calls')?.textContent) >= n,
    callsBefore + 3,
  );
  const model = page.locator('#live-breakers tr[data-breaker="model:demo-model"]');
  assert.match(await model.innerText(), /demo-model/);
  assert.equal(await model.locator("[data-state]").getAttribute("data-state"), "closed");
  // A sample is taken every 5 s; the tokens-per-second chart then shows the burst.
  await page.waitForFunction(() => Number(document.querySelector('[data-metric="tokensPerSecond"] svg')?.getAttribute("data-max")) > 0, null, { timeout: 15_000 });
  assert.doesNotMatch(await page.locator('[data-metric="tokensPerSecond"] .stat-peak').innerText(), /peak 0 /);
  assert.deepEqual(errors, []);
  await close();
});

test("the live view shows the requests waiting for a full model per key, and each key's share", async () => {
  const { page, errors, close } = await consolePage();
  const flood = await api("POST", "/admin/keys", { name: "batch job", role: "user" });
  const person = await api("POST", "/admin/keys", { name: "a person", role: "user", limits: { weight: 2 } });
  const ask = (/** @type {number} */ maxTokens, /** @type {string} */ key) =>
    api("POST", "/v1/chat/completions", { model: "demo-model", messages: [{ role: "user", content: "你好" }], max_tokens: maxTokens, ignore_eos: true }, key);
  /** The model's admission entry in the gateway's status, as the console reads it. */
  const admission = async () => (await api("GET", "/admin/status")).admission.find((/** @type {any} */ m) => m.model === "demo-model");
  const waiting = async (/** @type {string} */ id) => (await admission())?.keys.find((/** @type {any} */ k) => k.keyId === id)?.waiting ?? 0;

  // A long stream takes the model's only slot until the test lets it go (on a busy machine the demo
  // model is ten times slower than on an idle one, so no length would be right for both); three more
  // of the batch job's requests and one of the person's wait behind it.
  const holder = new AbortController();
  const running = fetch(`${stack.url}/v1/chat/completions`, {
    method: "POST",
    headers: { Authorization: `Bearer ${flood.key}`, "Content-Type": "application/json" },
    body: JSON.stringify({ model: "demo-model", messages: [{ role: "user", content: "你好" }], max_tokens: 3000, ignore_eos: true, stream: true }),
    signal: holder.signal,
  }).then((r) => r.text()).catch((e) => assert.equal(e.name, "AbortError"));
  await until(async () => (await admission())?.inFlight === 1, "the long generation to take the slot");
  const queued = [ask(4, flood.key), ask(4, flood.key), ask(4, flood.key), ask(4, person.key)];
  await until(async () => (await waiting(flood.id)) === 3 && (await waiting(person.id)) === 1, "four requests to wait");

  // Coming back to the view re-reads the status at once (the queue lasts only as long as the
  // long generation; the view's own poll comes every 3 s).
  await page.getByRole("tab", { name: "Switches" }).click();
  await page.getByRole("tab", { name: "Live" }).click();
  const model = page.locator('#live-admission [data-model="demo-model"]');
  const row = (/** @type {{ id: string }} */ k) => model.locator(`tr[data-key="${k.id}"]`);
  await row(flood).locator(".waiting", { hasText: /^3$/ }).waitFor();
  assert.equal(await row(person).locator(".waiting").innerText(), "1");
  assert.equal(await row(flood).locator(".waiting-everywhere").innerText(), "3");
  assert.match(await row(flood).innerText(), /batch job/);
  assert.match(await model.locator(".admission-model").innerText(), /demo-model: 1 of 1 in flight · fair order · counters: local/);

  // Once the stream is cancelled and the others are served nothing waits, and the shares are the
  // gateway's: the batch job got most.
  holder.abort();
  await Promise.all([running, ...queued]);
  await row(flood).locator(".waiting", { hasText: /^0$/ }).waitFor();
  const shares = Object.fromEntries((await admission()).keys.map((/** @type {any} */ k) => [k.keyId, k.share]));
  const pct = (/** @type {number} */ r) => new Intl.NumberFormat("en-US", { style: "percent", maximumFractionDigits: 1 }).format(r);
  assert.ok(shares[flood.id] > shares[person.id], JSON.stringify(shares));
  await row(flood).locator(".share", { hasText: pct(shares[flood.id]) }).waitFor();
  assert.equal(await row(person).locator(".share").innerText(), pct(shares[person.id]));
  assert.deepEqual(errors, []);
  await close();
});

test("an admin turns maintenance on in the console, the chat page answers with it, and off again", async () => {
  const message = "Down for maintenance: back at 17:00.";
  const { page: ops, errors, close } = await consolePage();
  try {
    await ops.getByRole("tab", { name: "Switches" }).click();
    const row = ops.locator('tr[data-switch="maintenance"]');
    await row.getByRole("button", { name: "Turn on" }).click();
    const dialog = ops.getByRole("dialog");
    await dialog.getByLabel("Message shown to users").fill(message);
    await dialog.getByLabel(/^Reason/).fill("browser test");
    await dialog.getByRole("button", { name: "Turn on" }).click();
    await dialog.waitFor({ state: "hidden" });
    // The effect, as re-read from the gateway: the row's state, who changed it, and one sentence.
    await ops.locator('tr[data-switch="maintenance"][data-state="on"]').waitFor();
    assert.match(await row.innerText(), /admin \(ADMIN_API_KEY\)/);
    assert.match(await row.innerText(), /browser test/);
    assert.match(await ops.locator("#switches-effect").innerText(), /Maintenance.+is now on/);

    const chatPage = await ops.context().newPage();
    await openChat(chatPage, stack.adminKey);
    const degraded = await send(chatPage);
    assert.match(await degraded.locator('.notice[data-kind="degraded"]').innerText(), /maintenance|维护/i);
    assert.match(await degraded.locator(".body").innerText(), /back at 17:00/);

    await ops.bringToFront();
    await row.getByRole("button", { name: "Turn off" }).click();
    await dialog.getByRole("button", { name: "Turn off" }).click();
    await ops.locator('tr[data-switch="maintenance"][data-state="off"]').waitFor();
    assert.match(await ops.locator("#switches-effect").innerText(), /is now off/);

    await chatPage.bringToFront();
    const normal = await send(chatPage);
    assert.equal(await normal.locator('.notice[data-kind="degraded"]').count(), 0);
    const text = (await normal.locator(".body").innerText()).trim();
    assert.ok(text.length > 0 && !text.includes("back at 17:00"), `not a normal reply: ${text}`);
    assert.deepEqual(errors, []);
  } finally {
    // Whatever failed above, the later tests need the service out of maintenance.
    await api("DELETE", "/admin/switches/maintenance");
    await close();
  }
});

test("a key created in the console with 2 requests a minute gets the rate-limit notice on its third message", async () => {
  const { page: ops, errors, close } = await consolePage();
  await ops.context().grantPermissions(["clipboard-read", "clipboard-write"], { origin: stack.url });
  await ops.getByRole("tab", { name: "Keys" }).click();
  const form = ops.locator("#key-form");
  await form.getByLabel("Name").fill("two-a-minute");
  await form.getByLabel("Requests per minute").fill("2");
  await form.getByRole("button", { name: "Create key" }).click();

  const secret = ops.getByLabel("New key (shown once)");
  await secret.waitFor();
  const key = await secret.inputValue();
  assert.match(key, /^sk-/);
  await ops.getByRole("button", { name: "Copy", exact: true }).click();
  await ops.getByText("Copied", { exact: true }).waitFor();
  assert.equal(await ops.evaluate(() => navigator.clipboard.readText()), key);
  const row = ops.locator("#keys-table tbody tr", { hasText: "two-a-minute" });
  assert.match(await row.innerText(), /2 req\/min/);
  await ops.getByRole("button", { name: /Done/ }).click();
  assert.equal(await secret.isVisible(), false);
  assert.deepEqual(errors, []);
  await close();

  const user = await newPage(browser);
  await openChat(user.page, key);
  await send(user.page);
  await send(user.page);
  await composer(user.page).fill("你好");
  await user.page.keyboard.press("Enter");
  const notice = user.page.locator('.notice[data-kind="rate_limit"]');
  await notice.waitFor();
  assert.match(await notice.innerText(), /\d+\s*(s\b|sec|秒)/);
  await user.close();
});

test("a key left with no model ticked can call no model, until “All models” is ticked again", async () => {
  const { page, errors, close } = await consolePage();
  await page.getByRole("tab", { name: "Keys" }).click();
  const form = page.locator("#key-form");
  await form.getByLabel("Name").fill("no-model-key");
  const all = form.getByLabel("All models, also ones added later");
  assert.equal(await all.isChecked(), true, "a new key may use every model unless told otherwise");
  await all.uncheck();
  await form.getByText("No model ticked: this key will be able to use no model.").waitFor();
  await form.getByRole("button", { name: "Create key" }).click();
  const secret = page.getByLabel("New key (shown once)");
  await secret.waitFor();
  const key = await secret.inputValue();
  await page.getByRole("button", { name: /Done/ }).click();
  const row = page.locator("#keys-table tbody tr", { hasText: "no-model-key" });
  await row.locator(".models-none", { hasText: "no model" }).waitFor();
  await assert.rejects(chat(key), /403/);
  assert.deepEqual((await api("GET", "/v1/models", undefined, key)).data, []);

  await row.getByRole("button", { name: "Edit" }).click();
  const dialog = page.getByRole("dialog");
  await dialog.getByText("No model ticked: this key will be able to use no model.").waitFor();
  console.log(await screenshot(page, "ops-key-no-model"));
  await dialog.getByLabel("All models, also ones added later").check();
  assert.equal(await dialog.getByText("No model ticked").isVisible(), false);
  await dialog.getByRole("button", { name: "Save" }).click();
  await page.getByText("“no-model-key” saved.").waitFor();
  assert.match(await row.innerText(), /all models/);
  assert.ok((await chat(key)).choices[0].message.content.length > 0);
  assert.deepEqual(errors, []);
  await close();
});

test("a user key is refused by the console and by its API", async () => {
  const created = await api("POST", "/admin/keys", { name: "just-a-user" });
  const { page, errors, close } = await newPage(browser);
  await signIn(page, `${stack.url}/ops`, created.key);
  await page.getByRole("heading", { name: "This console is for administrators" }).waitFor();
  assert.match(await page.locator("#refused").innerText(), /just-a-user/);
  assert.equal(await page.getByRole("tab").count(), 0);
  const statuses = await page.evaluate(async () => {
    const put = await fetch("/admin/switches/maintenance", { method: "PUT", headers: { "Content-Type": "application/json" }, body: '{"enabled":true}' });
    const reads = await Promise.all(["/admin/status", "/admin/keys", "/admin/usage", "/admin/audit"].map(async (p) => (await fetch(p)).status));
    return [...reads, put.status];
  });
  assert.deepEqual(statuses, [403, 403, 403, 403, 403]);
  const maintenance = (await api("GET", "/admin/switches")).data.find((/** @type {any} */ s) => s.kind === "maintenance");
  assert.equal(maintenance.active, false);
  assert.deepEqual(errors, []);
  await close();
});

test("usage of a chat just made shows in the usage view, by key and by model", async () => {
  const probe = await api("POST", "/admin/keys", { name: "usage-probe" });
  const answer = await chat(probe.key);
  // Usage records are written off the request path, in batches.
  await until(async () => (await api("GET", `/admin/usage?keyId=${probe.id}`)).total.requests === 1, "the usage record");

  const { page, errors, close } = await consolePage();
  await page.getByRole("tab", { name: "Usage" }).click();
  await page.getByLabel("Group by").selectOption("key");
  const bar = page.locator(".bar-chart li", { hasText: "usage-probe" });
  await bar.waitFor();
  assert.match(await bar.innerText(), new RegExp(`${answer.usage.total_tokens} tokens · 1 req`));
  const record = page.locator("#usage-records tbody tr", { hasText: "usage-probe" });
  assert.equal(await record.count(), 1);
  assert.match(await record.innerText(), new RegExp(`demo-model[\\s\\S]*${answer.usage.prompt_tokens} \\+ ${answer.usage.completion_tokens}`));

  await page.getByLabel("Group by").selectOption("model");
  const modelRow = page.locator('#usage-groups tr[data-group="demo-model"]');
  await modelRow.waitFor();
  await page.locator(".bar-chart li", { hasText: "demo-model" }).waitFor();
  const total = (await api("GET", "/admin/usage?groupBy=model")).groups.find((/** @type {any} */ g) => g.group === "demo-model");
  assert.match(await modelRow.innerText(), new RegExp(`demo-model\\s+${total.requests}\\s`));
  assert.deepEqual(errors, []);
  await close();
});

test("a key named like markup stays text in the key list, the dialogs and the audit log", async () => {
  const name = "<img src=x onerror=window.__pwned=1>";
  const { page, errors, close } = await consolePage();
  await page.getByRole("tab", { name: "Keys" }).click();
  await page.locator("#key-form").getByLabel("Name").fill(name);
  await page.getByRole("button", { name: "Create key" }).click();
  await page.getByRole("button", { name: /Done/ }).click();
  const row = page.locator("#keys-table tbody tr", { hasText: name });
  assert.equal(await row.locator(".key-name").innerText(), name);

  // Revoking it goes through the dialog, whose title names the key.
  await row.getByRole("button", { name: "Revoke" }).click();
  const dialog = page.getByRole("dialog");
  assert.equal(await dialog.getByRole("heading").innerText(), `Revoke “${name}”?`);
  await dialog.getByRole("button", { name: "Revoke" }).click();
  await page.locator("#keys-table tbody tr", { hasText: name }).locator(".status-revoked").waitFor();

  await page.getByRole("tab", { name: "Audit log" }).click();
  const revoked = page.locator('#audit-table tr[data-action="key.revoke"]', { hasText: name }).first();
  await revoked.waitFor();
  assert.match(await revoked.innerText(), /status: active → revoked/);
  const created = page.locator('#audit-table tr[data-action="key.create"]', { hasText: name }).first();
  await created.locator("summary").click();
  assert.match(await created.locator("pre").last().innerText(), /"name": "<img src=x onerror=window.__pwned=1>"/);

  assert.equal(await page.locator("img").count(), 0);
  assert.equal(await page.evaluate(() => /** @type {any} */ (window).__pwned), undefined);
  assert.deepEqual(errors, []);
  await close();
});

test("the console speaks Chinese to a zh browser and English after the switch", async () => {
  const { page, errors, close } = await newPage(browser, { locale: "zh-CN" });
  await signIn(page, `${stack.url}/ops`, stack.adminKey);
  await page.getByRole("tab", { name: "实时" }).waitFor();
  assert.equal(await page.getByRole("heading", { level: 2 }).first().innerText(), "实时服务状态");
  await page.getByLabel("语言").selectOption("en");
  await page.getByRole("tab", { name: "Live" }).waitFor();
  assert.equal(await page.locator("html").getAttribute("lang"), "en");
  assert.deepEqual(errors, []);
  await close();
});

test("screenshots: the console on a desktop and on a phone, every section usable at 390 px", async () => {
  for (const [name, viewport] of /** @type {const} */ ([["ops-desktop", DESKTOP], ["ops-phone", PHONE]])) {
    const { page, errors, close } = await consolePage(viewport);
    await page.locator('#live-breakers tr[data-breaker="model:demo-model"]').waitFor();
    await page.locator('[data-metric="tokensPerSecond"] svg').waitFor();
    // The header and the first charts are what an operator sees first.
    console.log(await screenshot(page, name));
    if (viewport === PHONE) {
      // Tabs by keyboard, and no section wider than the phone.
      await page.getByRole("tab", { name: "Live" }).focus();
      for (const tab of ["Switches", "Keys", "Usage", "Audit log"]) {
        await page.keyboard.press("ArrowRight");
        const selected = page.getByRole("tab", { name: tab, selected: true });
        await selected.waitFor();
        assert.equal(await selected.evaluate((el) => el === document.activeElement), true);
        await page.locator(`#panel-${tab === "Audit log" ? "audit" : tab.toLowerCase()} table tbody tr`).first().waitFor();
        const width = await page.evaluate(() => document.documentElement.scrollWidth);
        assert.ok(width <= PHONE.width, `${tab} is ${width} px wide on a ${PHONE.width} px screen`);
      }
    }
    assert.deepEqual(errors, []);
    await close();
  }
});
