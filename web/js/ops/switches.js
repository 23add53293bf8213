// @ts-check
// Switches: every degradation switch with its state, setting, expiry and who changed it last.
// Flipping one goes through the confirmation dialog; the row then shows the state re-read from
// the gateway, and a line says what changed.
import { openDialog } from "./dialog.js";
import { allModels, loadModels } from "./directory.js";
import { $, fillTable, h, setHeadings } from "./dom.js";
import { get, query, request } from "./http.js";
import { dateTime, has, relative, t } from "./i18n.js";

/** @typedef {{ kind: string, model: string | null, enabled: boolean, active: boolean, message: string | null, value: number | null,
 *              target: string | null, reason: string | null, expiresAt: string | null, updatedBy: string | null, updatedAt: string | null }} Switch */

const ORDER = ["maintenance", "read_only", "streaming_off", "max_tokens", "model_route", "model_disabled"];
const PER_MODEL = ["max_tokens", "model_route", "model_disabled"];

const ui = {
  effect: $("switches-effect", HTMLElement),
  error: $("switches-error", HTMLElement),
  table: $("switches-table", HTMLTableElement),
  refresh: $("switches-refresh", HTMLButtonElement),
  perModel: $("switch-model-form", HTMLFormElement),
  perModelKind: $("switch-model-kind", HTMLSelectElement),
  perModelModel: $("switch-model-model", HTMLSelectElement),
};

/** @type {Switch[]} */
let switches = [];

/** @param {Switch} s */
const idOf = (s) => (s.model ? `${s.kind}:${s.model}` : s.kind);
/** @param {string} kind */
const nameOf = (kind) => (has(`switch.${kind}`) ? t(/** @type {any} */ (`switch.${kind}`)) : kind);
/** @param {string | null} model */
const scopeOf = (model) => model ?? t("switches.everyModel");
/** @param {Switch} s */
const stateOf = (s) => (s.active ? "on" : s.enabled ? "expired" : "off");

/** @param {Switch} s */
function setting(s) {
  if (s.kind === "max_tokens" && s.value) return t("switches.value", { n: s.value });
  if (s.kind === "model_route" && s.target) return t("switches.target", { model: s.target });
  if (s.kind === "maintenance" || s.kind === "model_disabled") {
    return t("switches.message", { text: s.message ?? t("switches.defaultMessage") });
  }
  return t("none");
}

function render() {
  setHeadings(ui.table, ["switch", "scope", "state", "setting", "reason", "expires", "changed", "actions"].map((c) => t(/** @type {any} */ (`switches.col.${c}`))));
  const sorted = [...switches].sort((a, b) => ORDER.indexOf(a.kind) - ORDER.indexOf(b.kind) || (a.model ?? "").localeCompare(b.model ?? ""));
  fillTable(
    ui.table,
    sorted.map((s) => {
      const state = stateOf(s);
      const actions = h("div", { className: "actions" });
      if (s.active) {
        actions.append(
          h("button", { className: "secondary", text: t("switches.change"), attrs: { type: "button", "data-action": "change" }, on: { click: () => void turnOn(s.kind, s.model, s) } }),
          h("button", { text: t("switches.turnOff"), attrs: { type: "button", "data-action": "off" }, on: { click: () => void turnOff(s) } }),
        );
      } else {
        actions.append(h("button", { text: t("switches.turnOn"), attrs: { type: "button", "data-action": "on" }, on: { click: () => void turnOn(s.kind, s.model, null) } }));
      }
      return [
        h("div", {}, h("strong", { text: nameOf(s.kind) }), h("p", { className: "hint", text: has(`switchInfo.${s.kind}`) ? t(/** @type {any} */ (`switchInfo.${s.kind}`)) : "" })),
        scopeOf(s.model),
        h("span", { className: `badge state-${state}`, text: t(/** @type {any} */ (`state.${state}`)), attrs: { "data-state": state } }),
        setting(s),
        s.reason ?? t("none"),
        s.expiresAt && s.enabled ? h("time", { text: `${dateTime(s.expiresAt)} (${relative(s.expiresAt)})`, attrs: { datetime: s.expiresAt } }) : t("never"),
        s.updatedAt ? t("switches.changedBy", { who: s.updatedBy ?? t("none"), when: dateTime(s.updatedAt) }) : t("switches.neverChanged"),
        actions,
      ];
    }),
    (i) => ({ attrs: { "data-switch": idOf(sorted[i]), "data-state": stateOf(sorted[i]) } }),
  );
  renderPerModelForm();
}

function renderPerModelForm() {
  const kind = ui.perModelKind.value;
  const model = ui.perModelModel.value;
  ui.perModelKind.replaceChildren(...PER_MODEL.map((k) => h("option", { text: nameOf(k), attrs: { value: k } })));
  ui.perModelModel.replaceChildren(...allModels().map((m) => h("option", { text: m, attrs: { value: m } })));
  if (kind) ui.perModelKind.value = kind;
  if (model) ui.perModelModel.value = model;
}

/** Re-reads the switches and redraws. */
export async function load() {
  try {
    if (!allModels().length) await loadModels();
    switches = (await get("/admin/switches")).data;
    ui.error.textContent = "";
    render();
  } catch (e) {
    ui.error.textContent = t("loadFailed", { message: e instanceof Error ? e.message : String(e) });
  }
}

/** @param {string} kind @param {string | null} model @param {Switch | null} current */
function fieldsFor(kind, model, current) {
  /** @type {import("./forms.js").Field[]} */
  const fields = [];
  if (kind === "maintenance" || kind === "model_disabled") {
    fields.push({ name: "message", label: t("switches.field.message"), type: "textarea", value: current?.message, hint: t("switches.field.messageHint"), maxLength: 2000 });
  }
  if (kind === "max_tokens") {
    fields.push({ name: "value", label: t("switches.field.value"), type: "number", value: current?.value, required: true });
  }
  if (kind === "model_route") {
    const targets = allModels().filter((m) => m !== model);
    fields.push({
      name: "target",
      label: t("switches.field.target"),
      type: "select",
      options: targets.map((m) => ({ value: m, label: m })),
      value: current?.target,
      required: true,
      hint: targets.length ? undefined : t("switches.field.noTarget"),
    });
  }
  fields.push({ name: "reason", label: t("switches.field.reason"), type: "text", value: current?.reason, maxLength: 500 });
  fields.push({ name: "expiry", label: t("switches.field.expiry"), type: "expiry", value: current?.expiresAt });
  return fields;
}

/**
 * Asks, turns on (or changes) a switch, re-reads, and says what is in effect now.
 * @param {string} kind @param {string | null} model @param {Switch | null} current the switch when it is on already
 */
async function turnOn(kind, model, current) {
  const name = nameOf(kind);
  const scope = scopeOf(model);
  const ok = await openDialog({
    title: t(current ? "switches.changeTitle" : "switches.onTitle", { name, scope }),
    body: has(`switchInfo.${kind}`) ? t(/** @type {any} */ (`switchInfo.${kind}`)) : "",
    fields: fieldsFor(kind, model, current),
    confirmLabel: current ? t("keys.save") : t("switches.turnOn"),
    onConfirm: async (v) => {
      /** @type {Record<string, unknown>} */
      const body = { enabled: true, ...v.expiry };
      if (model) body.model = model;
      for (const field of ["message", "value", "target", "reason"]) {
        if (v[field] !== undefined && v[field] !== null && v[field] !== "") body[field] = v[field];
      }
      await request("PUT", `/admin/switches/${encodeURIComponent(kind)}`, body);
    },
  });
  if (ok) await showEffect(kind, model);
}

/** @param {Switch} s */
async function turnOff(s) {
  const name = nameOf(s.kind);
  const scope = scopeOf(s.model);
  const ok = await openDialog({
    title: t("switches.offTitle", { name, scope }),
    body: t("switches.offBody", { scope }),
    confirmLabel: t("switches.turnOff"),
    danger: true,
    onConfirm: async () => {
      await request("DELETE", `/admin/switches/${encodeURIComponent(s.kind)}${query({ model: s.model })}`);
    },
  });
  if (ok) await showEffect(s.kind, s.model);
}

/** After a change: the state as the gateway now has it, in the table and in one sentence. @param {string} kind @param {string | null} model */
async function showEffect(kind, model) {
  await load();
  const now = switches.find((s) => s.kind === kind && (s.model ?? null) === (model ?? null));
  const id = model ? `${kind}:${model}` : kind;
  const row = /** @type {HTMLElement | null} */ (ui.table.querySelector(`tr[data-switch="${CSS.escape(id)}"]`));
  if (!now || !row) return;
  const name = nameOf(kind);
  const scope = scopeOf(model);
  ui.effect.textContent = now.active
    ? t("switches.effectOn", { name, scope, until: now.expiresAt ? t("switches.until", { time: dateTime(now.expiresAt) }) : "" })
    : t("switches.effectOff", { name, scope });
  row.classList.add("changed");
  /** @type {HTMLElement | null} */ (row.querySelector("button"))?.focus();
}

ui.refresh.addEventListener("click", () => void load());
ui.perModel.addEventListener("submit", (e) => {
  e.preventDefault();
  const kind = ui.perModelKind.value;
  const model = ui.perModelModel.value;
  const current = switches.find((s) => s.kind === kind && s.model === model && s.active) ?? null;
  void turnOn(kind, model, current);
});

/** Redraws in the current language. */
export function refresh() {
  if (switches.length) render();
}
