// @ts-check
// The one confirmation dialog: a title, what will happen, optional fields, and a confirm button
// that runs the change. A refusal from the gateway is shown in the dialog, which stays open.
import { $ } from "./dom.js";
import { focusParam, readFields, renderFields } from "./forms.js";
import { t } from "./i18n.js";

const ui = {
  dialog: $("dialog", HTMLDialogElement),
  form: $("dialog-form", HTMLFormElement),
  title: $("dialog-title", HTMLElement),
  body: $("dialog-body", HTMLElement),
  fields: $("dialog-fields", HTMLElement),
  error: $("dialog-error", HTMLElement),
  cancel: $("dialog-cancel", HTMLButtonElement),
  confirm: $("dialog-confirm", HTMLButtonElement),
};

/** @type {{ fields: import("./forms.js").Field[], onConfirm: (values: Record<string, any>) => Promise<void>, resolve: (ok: boolean) => void } | null} */
let pending = null;

/**
 * Opens the dialog; resolves true once `onConfirm` succeeded, false when cancelled.
 * @param {{ title: string, body?: string, fields?: import("./forms.js").Field[], confirmLabel: string, danger?: boolean,
 *           onConfirm: (values: Record<string, any>) => Promise<void> }} options
 * @returns {Promise<boolean>}
 */
export function openDialog(options) {
  if (pending) pending.resolve(false);
  ui.title.textContent = options.title;
  ui.body.textContent = options.body ?? "";
  ui.body.hidden = !options.body;
  renderFields(ui.fields, options.fields ?? [], "dlg");
  ui.error.textContent = "";
  ui.confirm.textContent = options.confirmLabel;
  ui.confirm.classList.toggle("danger", options.danger ?? false);
  ui.confirm.disabled = false;
  ui.cancel.textContent = t("cancel");
  return new Promise((resolve) => {
    pending = { fields: options.fields ?? [], onConfirm: options.onConfirm, resolve };
    ui.dialog.showModal();
    const first = /** @type {HTMLElement | null} */ (ui.fields.querySelector("input, select, textarea"));
    (first ?? ui.confirm).focus();
  });
}

function finish(/** @type {boolean} */ ok) {
  const p = pending;
  pending = null;
  if (ui.dialog.open) ui.dialog.close();
  p?.resolve(ok);
}

ui.form.addEventListener("submit", async (e) => {
  e.preventDefault();
  if (!pending) return;
  const p = pending;
  ui.error.textContent = "";
  ui.confirm.disabled = true;
  try {
    await p.onConfirm(readFields(ui.fields, p.fields));
    finish(true);
  } catch (err) {
    ui.confirm.disabled = false;
    ui.error.textContent = err instanceof Error ? err.message : String(err);
    focusParam(ui.fields, /** @type {any} */ (err).param);
  }
});

ui.cancel.addEventListener("click", () => finish(false));
// Escape closes a modal dialog by itself; this settles the promise too.
ui.dialog.addEventListener("close", () => {
  if (pending) finish(false);
});
