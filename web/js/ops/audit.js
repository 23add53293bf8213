// @ts-check
// Audit log: who changed what and when, with each change as "field: before → after" and the
// whole records before and after on request.
import { keyName, loadKeys } from "./directory.js";
import { $, fillTable, h, setHeadings } from "./dom.js";
import { get, query } from "./http.js";
import { dateTime, has, t } from "./i18n.js";
import { windowRange, wireWindow } from "./windows.js";

const LIMIT = 200;
// Fields that every record has or that change by themselves; they say nothing about the change.
const QUIET = new Set(["id", "prefix", "createdAt", "lastUsedAt", "updatedAt", "updatedBy", "kind", "model", "active"]);

const ui = {
  form: $("audit-form", HTMLFormElement),
  action: $("audit-action", HTMLSelectElement),
  window: $("audit-window", HTMLSelectElement),
  fromField: $("audit-from-field", HTMLElement),
  toField: $("audit-to-field", HTMLElement),
  from: $("audit-from", HTMLInputElement),
  to: $("audit-to", HTMLInputElement),
  error: $("audit-error", HTMLElement),
  table: $("audit-table", HTMLTableElement),
};

/** @typedef {{ id: number, at: string, actorKeyId: string, actorName: string, action: string, target: string,
 *              before: string | null, after: string | null, requestId: string | null }} Entry */

/** @type {Entry[] | null} */
let entries = null;

/** @param {string | null} json */
function parse(json) {
  if (!json) return null;
  try {
    return JSON.parse(json);
  } catch {
    return null;
  }
}

/** @param {unknown} v */
function show(v) {
  if (v === null || v === undefined) return t("none");
  return typeof v === "string" ? v : JSON.stringify(v);
}

/** What the entry acted on, for people. @param {Entry} e @param {any} before @param {any} after */
function target(e, before, after) {
  if (e.action.startsWith("key.")) return after?.name ?? before?.name ?? keyName(e.target);
  if (e.action.startsWith("switch.")) {
    const [kind, ...model] = e.target.split(":");
    const name = has(`switch.${kind}`) ? t(/** @type {any} */ (`switch.${kind}`)) : kind;
    return model.length ? `${name} · ${model.join(":")}` : name;
  }
  return e.target;
}

/** The changed fields, one line each. @param {any} before @param {any} after */
function changes(before, after) {
  const fields = [...new Set([...Object.keys(before ?? {}), ...Object.keys(after ?? {})])].filter((f) => !QUIET.has(f));
  const lines = [];
  for (const f of fields) {
    const a = before?.[f];
    const b = after?.[f];
    if (JSON.stringify(a) === JSON.stringify(b)) continue;
    // A new record: what was set, not every field left empty.
    if (!before && (b === null || b === undefined || (typeof b === "object" && !Object.keys(b).length))) continue;
    lines.push(before ? `${f}: ${show(a)} → ${show(b)}` : `${f}: ${show(b)}`);
  }
  return lines;
}

/** @param {Entry} e */
function changeCell(e) {
  const before = parse(e.before);
  const after = parse(e.after);
  const lines = changes(before, after);
  const details = h(
    "details",
    {},
    h("summary", { text: t("audit.full") }),
    h("p", { className: "hint", text: t("audit.before") }),
    h("pre", { text: before ? JSON.stringify(before, null, 2) : t("none") }),
    h("p", { className: "hint", text: t("audit.after") }),
    h("pre", { text: after ? JSON.stringify(after, null, 2) : t("none") }),
  );
  return h(
    "div",
    {},
    h("ul", { className: "changes" }, ...(lines.length ? lines : [t("audit.nothingChanged")]).map((l) => h("li", { text: l }))),
    details,
  );
}

function render() {
  if (!entries) return;
  setHeadings(ui.table, ["time", "actor", "action", "target", "change", "request"].map((c) => t(/** @type {any} */ (`audit.col.${c}`))));
  const rows = entries;
  if (!rows.length) {
    fillTable(ui.table, []);
    ui.table.tBodies[0].append(h("tr", {}, h("td", { text: t("audit.empty"), attrs: { colspan: 6 } })));
    return;
  }
  fillTable(
    ui.table,
    rows.map((e) => {
      const before = parse(e.before);
      const after = parse(e.after);
      return [
        dateTime(e.at),
        e.actorName ?? e.actorKeyId,
        has(`action.${e.action}`) ? t(/** @type {any} */ (`action.${e.action}`)) : e.action,
        h("span", { className: "target", text: target(e, before, after) }),
        changeCell(e),
        h("span", { className: "mono small", text: e.requestId ?? t("none") }),
      ];
    }),
    (i) => ({ attrs: { "data-action": rows[i].action, "data-target": rows[i].target } }),
  );
}

function renderActions() {
  const current = ui.action.value;
  const actions = ["key.create", "key.update", "key.revoke", "switch.set", "switch.expire"];
  ui.action.replaceChildren(
    h("option", { text: t("audit.allActions"), attrs: { value: "" } }),
    ...actions.map((a) => h("option", { text: t(/** @type {any} */ (`action.${a}`)), attrs: { value: a } })),
  );
  ui.action.value = current;
}

/** Reads the entries of the chosen action and window and redraws. */
export async function load() {
  ui.error.textContent = "";
  try {
    const range = windowRange(ui.window.value, ui.from, ui.to);
    const [body] = await Promise.all([get(`/admin/audit${query({ action: ui.action.value, ...range, limit: LIMIT })}`), loadKeys()]);
    entries = body.data;
    render();
  } catch (e) {
    ui.error.textContent = e instanceof Error ? e.message : String(e);
  }
}

renderActions();
wireWindow(ui.window, [ui.fromField, ui.toField], ui.from, ui.to);
ui.form.addEventListener("submit", (e) => {
  e.preventDefault();
  void load();
});
ui.action.addEventListener("change", () => void load());
ui.window.addEventListener("change", () => {
  if (ui.window.value !== "custom") void load();
});

/** Redraws in the current language. */
export function refresh() {
  renderActions();
  render();
}
