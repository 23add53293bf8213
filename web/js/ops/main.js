// @ts-check
// The ops console: sign-in, the refusal for user keys, the sections as tabs, the language switch.
import * as audit from "./audit.js";
import { $ } from "./dom.js";
import { ApiError, request, setUnauthorizedHandler } from "./http.js";
import { language, setLanguage, t, translatePage } from "./i18n.js";
import * as keys from "./keys.js";
import * as live from "./live.js";
import * as switches from "./switches.js";
import * as usage from "./usage.js";

const ui = {
  who: $("who", HTMLElement),
  lang: $("lang", HTMLSelectElement),
  signout: $("signout", HTMLButtonElement),
  signin: $("signin", HTMLElement),
  signinForm: $("signin-form", HTMLFormElement),
  apiKey: $("api-key", HTMLInputElement),
  signinError: $("signin-error", HTMLElement),
  refused: $("refused", HTMLElement),
  refusedBody: $("refused-body", HTMLElement),
  refusedSignout: $("refused-signout", HTMLButtonElement),
  console: $("console", HTMLElement),
  tablist: $("tablist", HTMLElement),
};

/** @type {Record<string, { load?: () => Promise<void>, start?: () => void, stop?: () => void, refresh: () => void }>} */
const SECTIONS = { live, switches, keys, usage, audit };
const tabs = /** @type {HTMLButtonElement[]} */ ([...ui.tablist.querySelectorAll("[role=tab]")]);

/** @type {{ name: string, role: string } | null} */
let session = null;
let current = "";

/** Shows one of the three screens. @param {"signin" | "refused" | "console"} screen */
function show(screen) {
  ui.signin.hidden = screen !== "signin";
  ui.refused.hidden = screen !== "refused";
  ui.console.hidden = screen !== "console";
  ui.signout.hidden = screen === "signin";
  ui.who.hidden = screen === "signin";
  if (screen !== "console") {
    live.stop();
    current = "";
  }
}

function showSignin(/** @type {string} */ message = "") {
  session = null;
  show("signin");
  ui.signinError.textContent = message;
  ui.apiKey.focus();
}

function renderWho() {
  ui.who.textContent = session ? t("who", { name: session.name }) : "";
  ui.refusedBody.textContent = session ? t("refused.body", { name: session.name }) : "";
}

/** Selects a section, shows it and loads what it shows. @param {string} name @param {boolean} [focus] */
function select(name, focus = false) {
  if (!(name in SECTIONS)) name = "live";
  for (const tab of tabs) {
    const on = tab.dataset.tab === name;
    tab.setAttribute("aria-selected", String(on));
    tab.tabIndex = on ? 0 : -1;
    $(`panel-${tab.dataset.tab}`, HTMLElement).hidden = !on;
    if (on && focus) tab.focus();
  }
  if (name !== "live") live.stop();
  if (current !== name) history.replaceState(null, "", `#${name}`);
  current = name;
  const section = SECTIONS[name];
  if (section.start) section.start();
  else void section.load?.();
}

/** Asks the gateway whose session this is, and shows the screen for that. */
async function route() {
  try {
    session = await request("GET", "/api/session", undefined, { quiet401: true });
  } catch (e) {
    showSignin(e instanceof ApiError && e.status === 401 ? "" : t("signin.failed", { message: String(/** @type {Error} */ (e).message) }));
    return;
  }
  renderWho();
  if (session?.role !== "admin") {
    show("refused");
    return;
  }
  show("console");
  select(location.hash.slice(1));
}

ui.signinForm.addEventListener("submit", async (e) => {
  e.preventDefault();
  ui.signinError.textContent = "";
  try {
    await request("POST", "/api/session", { apiKey: ui.apiKey.value.trim() }, { quiet401: true });
  } catch (err) {
    const bad = err instanceof ApiError && (err.status === 401 || err.status === 400);
    showSignin(bad ? t("signin.bad") : t("signin.failed", { message: String(/** @type {Error} */ (err).message) }));
    return;
  } finally {
    ui.apiKey.value = "";
  }
  await route();
});

async function signOut() {
  live.stop();
  await request("DELETE", "/api/session", undefined, { quiet401: true }).catch(() => {});
  showSignin();
}
ui.signout.addEventListener("click", () => void signOut());
ui.refusedSignout.addEventListener("click", () => void signOut());

// A 401 from any section means the session is gone (signed out elsewhere, key revoked).
setUnauthorizedHandler(() => showSignin(t("signin.ended")));

for (const tab of tabs) tab.addEventListener("click", () => select(/** @type {string} */ (tab.dataset.tab)));
// Arrow keys move between tabs (and select), as the ARIA tabs pattern has it.
ui.tablist.addEventListener("keydown", (e) => {
  const at = tabs.findIndex((tab) => tab === document.activeElement);
  if (at < 0) return;
  const next = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: tabs.length - 1 }[e.key];
  if (next === undefined) return;
  e.preventDefault();
  select(/** @type {string} */ (tabs[(next + tabs.length) % tabs.length].dataset.tab), true);
});
window.addEventListener("hashchange", () => {
  if (!ui.console.hidden) select(location.hash.slice(1));
});

ui.lang.value = language();
ui.lang.addEventListener("change", () => {
  setLanguage(ui.lang.value === "zh" ? "zh" : "en");
  translatePage();
  renderWho();
  for (const section of Object.values(SECTIONS)) section.refresh();
});

translatePage();
void route();
