// @ts-check
// Usage: totals, a bar per key or model, and the records, over a chosen time window.
import { barChart } from "./charts.js";
import { keyName, loadKeys } from "./directory.js";
import { $, fillTable, h, setHeadings } from "./dom.js";
import { get, query } from "./http.js";
import { dateTime, num, t } from "./i18n.js";
import { windowRange, wireWindow } from "./windows.js";

const RECORDS = 100;

const ui = {
  form: $("usage-form", HTMLFormElement),
  window: $("usage-window", HTMLSelectElement),
  fromField: $("usage-from-field", HTMLElement),
  toField: $("usage-to-field", HTMLElement),
  from: $("usage-from", HTMLInputElement),
  to: $("usage-to", HTMLInputElement),
  group: $("usage-group", HTMLSelectElement),
  error: $("usage-error", HTMLElement),
  range: $("usage-range", HTMLElement),
  totals: $("usage-totals", HTMLElement),
  chartTitle: $("usage-chart-title", HTMLElement),
  chart: $("usage-chart", HTMLElement),
  groups: $("usage-groups", HTMLTableElement),
  recordsTitle: $("usage-records-title", HTMLElement),
  records: $("usage-records", HTMLTableElement),
};

/** @type {any} */
let last = null;

const TOTALS = /** @type {const} */ (["requests", "promptTokens", "completionTokens", "totalTokens", "completed", "cancelled", "failed", "degraded"]);

/** A group's name for people: a key's name, or the model. @param {string | null} group */
function groupName(group) {
  if (group === null) return t("none");
  return last?.groupBy === "key" ? keyName(group) : group;
}

function render() {
  const u = last;
  if (!u) return;
  ui.range.textContent = t("usage.range", { from: u.from ? dateTime(u.from) : t("window.all"), to: u.to ? dateTime(u.to) : dateTime(u.at) });
  ui.totals.replaceChildren(
    ...TOTALS.map((name) => h("div", { className: "total", attrs: { "data-total": name } }, h("dt", { text: t(/** @type {any} */ (`usage.${name}`)) }), h("dd", { text: num(u.total?.[name] ?? 0) }))),
  );
  const byKey = u.groupBy === "key";
  ui.chartTitle.textContent = t(byKey ? "usage.chart.key" : "usage.chart.model");
  /** @type {any[]} */
  const groups = [...(u.groups ?? [])].sort((a, b) => b.totalTokens - a.totalTokens);
  ui.chart.replaceChildren(
    groups.length
      ? barChart(
          groups.map((g) => ({ label: groupName(g.group), value: g.totalTokens, caption: t("usage.bar", { tokens: num(g.totalTokens), requests: num(g.requests) }) })),
          ui.chartTitle.textContent,
        )
      : h("p", { className: "hint", text: t("usage.empty") }),
  );
  setHeadings(ui.groups, [t(byKey ? "usage.byKey" : "usage.byModel"), ...TOTALS.map((n) => t(/** @type {any} */ (`usage.${n}`)))]);
  fillTable(
    ui.groups,
    groups.map((g) => [groupName(g.group), ...TOTALS.map((n) => num(g[n]))]),
    (i) => ({ attrs: { "data-group": groups[i].group } }),
  );
  ui.recordsTitle.textContent = t("usage.records", { n: RECORDS });
  setHeadings(ui.records, ["time", "key", "model", "surface", "tokens", "ttft", "duration", "status", "degraded"].map((c) => t(/** @type {any} */ (`usage.col.${c}`))));
  fillTable(
    ui.records,
    (u.data ?? []).map((/** @type {any} */ r) => [
      dateTime(r.createdAt),
      keyName(r.keyId),
      r.model,
      r.surface,
      `${num(r.promptTokens)} + ${num(r.completionTokens)}`,
      r.ttftMs === null ? t("none") : t("ms", { n: num(r.ttftMs) }),
      t("ms", { n: num(r.durationMs) }),
      r.finishReason ? `${r.status} (${r.finishReason})` : r.status,
      r.degraded ?? t("none"),
    ]),
    (i) => ({ attrs: { "data-request": u.data[i].requestId } }),
  );
}

/** Reads the chosen window's usage and redraws. */
export async function load() {
  ui.error.textContent = "";
  try {
    const range = windowRange(ui.window.value, ui.from, ui.to);
    const [usage] = await Promise.all([
      get(`/admin/usage${query({ ...range, groupBy: ui.group.value, limit: RECORDS })}`),
      // Groups and records name keys by id: the names come from the key list.
      loadKeys(),
    ]);
    last = { ...usage, at: new Date().toISOString() };
    render();
  } catch (e) {
    ui.error.textContent = e instanceof Error ? e.message : String(e);
  }
}

wireWindow(ui.window, [ui.fromField, ui.toField], ui.from, ui.to);
ui.form.addEventListener("submit", (e) => {
  e.preventDefault();
  void load();
});
ui.window.addEventListener("change", () => {
  if (ui.window.value !== "custom") void load();
});
ui.group.addEventListener("change", () => void load());

/** Redraws in the current language. */
export const refresh = render;
