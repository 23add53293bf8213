// The one browser harness of the web tests: Debian's headless Chromium driven by playwright-core,
// pages signed in with a key, and screenshots written with the test output.
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { startStack } from "./stack.mjs";

const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
export const OUTPUT = join(dirname(fileURLToPath(import.meta.url)), "..", "test-output");

/** A desktop and a phone-sized viewport (the narrowest the pages must work at is 360 px). */
export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 390, height: 844 };

/** @returns {Promise<import("playwright-core").Browser>} */
export function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
      "--disable-sync", "--no-first-run", "--disable-quic"],
  });
}

/**
 * The real tiers and a browser, for a whole test file: `before(async () => ({ stack, browser } =
 * await startStackAndBrowser()))`, and `after(() => stopStackAndBrowser(stack, browser))`.
 * @param {Parameters<typeof startStack>[0]} [options] `{ scale: true }`: nginx and two gateways
 */
export async function startStackAndBrowser(options) {
  const stack = await startStack(options);
  return { stack, browser: await launchBrowser() };
}

/**
 * @param {Awaited<ReturnType<typeof startStack>> | undefined} stack
 * @param {import("playwright-core").Browser | undefined} browser
 */
export async function stopStackAndBrowser(stack, browser) {
  await browser?.close();
  await stack?.stop();
}

/**
 * A new page whose uncaught errors are collected (a test asserts there are none).
 * @param {import("playwright-core").Browser} browser
 * @param {{ viewport?: { width: number, height: number }, locale?: string }} [options]
 */
export async function newPage(browser, options = {}) {
  const context = await browser.newContext({ viewport: options.viewport ?? DESKTOP, locale: options.locale ?? "en-US" });
  const page = await context.newPage();
  /** @type {Error[]} */
  const errors = [];
  page.on("pageerror", (e) => errors.push(e));
  return { page, errors, close: () => context.close() };
}

/**
 * Signs in on the page at `url` (the chat page or the console) with an API key.
 * @param {import("playwright-core").Page} page @param {string} url @param {string} key
 */
export async function signIn(page, url, key) {
  await page.goto(url);
  await page.getByLabel(/API key|API 密钥/).fill(key);
  await page.getByRole("button", { name: /Sign in|登录/ }).click();
}

/** Writes a full-page screenshot to web/test-output/screenshots/NAME.png and returns its path. */
export async function screenshot(/** @type {import("playwright-core").Page} */ page, /** @type {string} */ name) {
  const dir = join(OUTPUT, "screenshots");
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${name}.png`);
  await page.screenshot({ path, fullPage: false });
  return path;
}
