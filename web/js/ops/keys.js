// @ts-check
// Keys: create one (its secret shown once, with a copy button), list them, change their name,
// models, limits and expiry, revoke them.
import { openDialog } from "./dialog.js";
import { allKeys, allModels, loadKeys, loadModels } from "./directory.js";
import { $, fillTable, h, setHeadings } from "./dom.js";
import { focusParam, readFields, renderFields } from "./forms.js";
import { request } from "./http.js";
import { dateTime, num, relative, t } from "./i18n.js";

/** @typedef {import("./directory.js").Key} Key */

const LIMITS = /** @type {const} */ ([
  ["requestsPerMinute", "keys.rpm"],
  ["tokensPerMinute", "keys.tpm"],
  ["concurrentStreams", "keys.concurrent"],
  ["tokensPerDay", "keys.tpd"],
  ["tokensPerMonth", "keys.tpmo"],
]);

const ui = {
  status: $("keys-status", HTMLElement),
  error: $("keys-error", HTMLElement),
  created: $("key-created", HTMLElement),
  createdHeading: $("key-created-heading", HTMLElement),
  createdValue: $("key-created-value", HTMLInputElement),
  copy: $("key-copy", HTMLButtonElement),
  copyStatus: $("key-copy-status", HTMLElement),
  done: $("key-created-done", HTMLButtonElement),
  form: $("key-form", HTMLFormElement),
  formFields: $("key-form-fields", HTMLElement),
  formError: $("key-form-error", HTMLElement),
  showRevoked: $("keys-show-revoked", HTMLInputElement),
  table: $("keys-table", HTMLTableElement),
};

/** The fields of a key; `key` fills them for an edit (which cannot change the role). @param {Key | null} key */
function keyFields(key) {
  /** @type {import("./forms.js").Field[]} */
  const fields = [{ name: "name", label: t("keys.name"), type: "text", required: true, value: key?.name, maxLength: 200 }];
  if (!key) {
    fields.push({
      name: "role",
      label: t("keys.role"),
      type: "select",
      value: "user",
      options: [
        { value: "user", label: t("keys.role.user") },
        { value: "admin", label: t("keys.role.admin") },
      ],
    });
  }
  fields.push({
    name: "models",
    label: t("keys.models"),
    type: "checkboxes",
    options: allModels().map((m) => ({ value: m, label: m })),
    // null: every model (a new key's default); [] is a real choice, no model at all.
    value: key ? key.models : null,
    allLabel: t("keys.modelsAll"),
    noneNote: t("keys.modelsNone"),
    hint: t("keys.modelsHint"),
  });
  for (const [name, label] of LIMITS) {
    fields.push({ name, label: t(label), type: "number", value: key?.limits?.[name] ?? null });
  }
  // The share when a model is full: any positive number; empty is the default, 1.
  fields.push({ name: "weight", label: t("keys.weight"), type: "number", min: 0.01, step: "any", placeholder: "1", value: key?.limits?.weight ?? null });
  fields.push({ name: "expiresAt", label: t("keys.expiresAt"), type: "datetime", value: key?.expiresAt });
  return fields;
}

/** The API's body from the form's values; `models` null is every model, [] none. @param {Record<string, any>} v */
function keyBody(v) {
  /** @type {Record<string, number>} */
  const limits = {};
  for (const [name] of [...LIMITS, ["weight"]]) if (v[name] !== null) limits[name] = v[name];
  return { name: v.name, models: v.models, limits, expiresAt: v.expiresAt };
}

/** What a key may call: every model, the listed ones, or, marked, none. @param {Key} k */
function modelsCell(k) {
  if (k.models === null) return t("allModels");
  if (!k.models.length) return h("span", { className: "badge models-none", text: t("noModel") });
  return k.models.join(", ");
}

/** @param {Key} k */
function limitsText(k) {
  const parts = LIMITS.filter(([name]) => k.limits?.[name]).map(([name]) => t(/** @type {any} */ (`limit.${name}`), { n: num(k.limits[name]) }));
  if (k.limits?.weight) parts.push(t("limit.weight", { n: num(k.limits.weight) }));
  return parts.length ? parts.join(", ") : t("limit.none");
}

function renderForm() {
  renderFields(ui.formFields, keyFields(null), "new-key");
}

function renderList() {
  setHeadings(ui.table, ["name", "prefix", "role", "status", "models", "limits", "expires", "lastUsed", "actions"].map((c) => t(/** @type {any} */ (`keys.col.${c}`))));
  const keys = allKeys().filter((k) => ui.showRevoked.checked || k.status !== "revoked");
  if (!keys.length) {
    fillTable(ui.table, []);
    ui.table.tBodies[0].append(h("tr", {}, h("td", { text: t("keys.empty"), attrs: { colspan: 9 } })));
    return;
  }
  fillTable(
    ui.table,
    keys.map((k) => {
      const actions = h("div", { className: "actions" });
      if (k.status !== "revoked") {
        actions.append(
          h("button", { className: "secondary", text: t("keys.edit"), attrs: { type: "button" }, on: { click: () => void edit(k) } }),
          h("button", { className: "danger", text: t("keys.revoke"), attrs: { type: "button" }, on: { click: () => void revoke(k) } }),
        );
      }
      return [
        h("strong", { className: "key-name", text: k.name }),
        h("span", { className: "mono", text: `${k.prefix}…` }),
        t(/** @type {any} */ (`role.${k.role}`)),
        h("span", { className: `badge status-${k.status}`, text: t(/** @type {any} */ (`status.${k.status}`)) }),
        modelsCell(k),
        limitsText(k),
        k.expiresAt ? dateTime(k.expiresAt) : t("never"),
        k.lastUsedAt ? relative(k.lastUsedAt) : t("never"),
        actions,
      ];
    }),
    (i) => ({ attrs: { "data-key": keys[i].id } }),
  );
}

/** Re-reads keys and models and redraws. */
export async function load() {
  try {
    const first = !allModels().length;
    await Promise.all([loadKeys(), first ? loadModels() : null]);
    if (first || !ui.formFields.childElementCount) renderForm();
    ui.error.textContent = "";
    renderList();
  } catch (e) {
    ui.error.textContent = t("loadFailed", { message: e instanceof Error ? e.message : String(e) });
  }
}

/** @param {Key} k */
async function edit(k) {
  const ok = await openDialog({
    title: t("keys.editTitle", { name: k.name }),
    fields: keyFields(k),
    confirmLabel: t("keys.save"),
    onConfirm: async (v) => {
      await request("PATCH", `/admin/keys/${encodeURIComponent(k.id)}`, keyBody(v));
    },
  });
  if (ok) await afterChange(k.id, "keys.saved");
}

/** @param {Key} k */
async function revoke(k) {
  const ok = await openDialog({
    title: t("keys.revokeTitle", { name: k.name }),
    body: t("keys.revokeBody"),
    confirmLabel: t("keys.revoke"),
    danger: true,
    onConfirm: async () => {
      await request("DELETE", `/admin/keys/${encodeURIComponent(k.id)}`);
    },
  });
  if (ok) await afterChange(k.id, "keys.revoked");
}

/** @param {string} id @param {"keys.saved" | "keys.revoked"} message */
async function afterChange(id, message) {
  ui.showRevoked.checked ||= message === "keys.revoked";
  await load();
  const key = allKeys().find((k) => k.id === id);
  ui.status.textContent = t(message, { name: key?.name ?? id });
  const row = ui.table.querySelector(`tr[data-key="${CSS.escape(id)}"]`);
  row?.classList.add("changed");
  /** @type {HTMLElement | null} */ (row?.querySelector("button") ?? null)?.focus();
}

ui.form.addEventListener("submit", async (e) => {
  e.preventDefault();
  const submit = /** @type {HTMLButtonElement} */ (ui.form.querySelector("button[type=submit]"));
  const fields = keyFields(null);
  const v = readFields(ui.formFields, fields);
  ui.formError.textContent = "";
  submit.disabled = true;
  try {
    const created = await request("POST", "/admin/keys", { ...keyBody(v), role: v.role, expiresAt: v.expiresAt ?? undefined });
    ui.createdHeading.textContent = t("keys.createdHeading", { name: created.name });
    ui.createdValue.value = created.key;
    ui.copy.textContent = t("keys.copy");
    ui.copyStatus.textContent = "";
    ui.created.hidden = false;
    ui.form.reset();
    renderForm();
    ui.status.textContent = "";
    await load();
    ui.createdValue.focus();
    ui.createdValue.select();
  } catch (err) {
    ui.formError.textContent = err instanceof Error ? err.message : String(err);
    focusParam(ui.formFields, /** @type {any} */ (err).param);
  } finally {
    submit.disabled = false;
  }
});

ui.copy.addEventListener("click", async () => {
  try {
    await navigator.clipboard.writeText(ui.createdValue.value);
    ui.copyStatus.textContent = t("keys.copied");
  } catch {
    // No clipboard permission (plain http on another host, an old browser): select it instead.
    ui.createdValue.focus();
    ui.createdValue.select();
    ui.copyStatus.textContent = document.execCommand("copy") ? t("keys.copied") : t("keys.copyFailed");
  }
});

ui.done.addEventListener("click", () => {
  // The key leaves the page: it cannot be shown again.
  ui.createdValue.value = "";
  ui.created.hidden = true;
  /** @type {HTMLElement | null} */ (ui.formFields.querySelector("input"))?.focus();
});

ui.showRevoked.addEventListener("change", renderList);

/** Redraws in the current language, keeping what was typed in the create form. */
export function refresh() {
  if (ui.formFields.childElementCount) {
    const typed = readFields(ui.formFields, keyFields(null));
    renderForm();
    for (const [name, value] of Object.entries(typed)) {
      const el = /** @type {HTMLInputElement | null} */ (ui.formFields.querySelector(`[name="${name}"]`));
      if (el && ["text", "number", "select-one"].includes(el.type) && value !== null) el.value = String(value);
    }
  }
  if (ui.table.tHead) renderList();
}
