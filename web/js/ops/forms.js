// @ts-check
// Form fields described as data, so the same description builds a form on the page and one in
// the dialog, and reads the values back in the shapes the admin API takes.
import { h } from "./dom.js";
import { t } from "./i18n.js";

/**
 * @typedef {{ name: string, label: string, type: "text" | "textarea" | "number" | "select" | "checkboxes" | "datetime" | "expiry",
 *             value?: any, options?: { value: string, label: string }[], required?: boolean, hint?: string,
 *             min?: number, step?: number | "any", placeholder?: string, maxLength?: number, allLabel?: string, noneNote?: string }} Field
 *
 * Checkboxes with `allLabel` start with a box for "every option, also ones added later" (value
 * null) that locks the others; unticked, the value is the ticked options, possibly none, and
 * `noneNote` says what none means, so that an empty choice never passes for "all".
 */

const EXPIRY_CHOICES = ["never", "900", "3600", "14400", "86400", "at"];

/** `YYYY-MM-DDTHH:MM` in local time, what a datetime-local input holds. @param {string | Date | null | undefined} at */
export function toLocalInput(at) {
  if (!at) return "";
  const d = new Date(at);
  const pad = (/** @type {number} */ n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** An ISO instant from a datetime-local value, or null when empty. @param {string} value */
export function fromLocalInput(value) {
  if (!value) return null;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

/**
 * The controls of the fields, each with its label, inside `container`.
 * @param {HTMLElement} container @param {Field[]} fields @param {string} prefix unique per form, for ids
 */
export function renderFields(container, fields, prefix) {
  container.replaceChildren(...fields.map((f) => control(f, `${prefix}-${f.name}`)));
}

/** @param {Field} f @param {string} id */
function control(f, id) {
  const hintId = f.hint ? `${id}-hint` : null;
  const hint = f.hint ? h("p", { className: "hint", text: f.hint, attrs: { id: hintId } }) : null;
  const common = { id, name: f.name, "aria-describedby": hintId, required: f.required ?? false };
  if (f.type === "checkboxes") {
    /** @type {HTMLInputElement[]} */
    const inputs = [];
    const boxes = (f.options ?? []).map((o, i) => {
      const input = h("input", { attrs: { type: "checkbox", name: f.name, value: o.value, id: `${id}-${i}` }, props: { checked: (f.value ?? []).includes(o.value) } });
      inputs.push(/** @type {HTMLInputElement} */ (input));
      return h("label", { className: "check" }, input, o.label);
    });
    const legend = h("legend", { text: f.label });
    if (!f.allLabel) return h("fieldset", { className: "field", attrs: { "data-field": f.name, "aria-describedby": hintId } }, legend, ...boxes, hint);
    const all = /** @type {HTMLInputElement} */ (h("input", { attrs: { type: "checkbox", name: `${f.name}-all`, id: `${id}-all` }, props: { checked: f.value === null || f.value === undefined } }));
    const note = h("p", { className: "warning", text: f.noneNote ?? "", attrs: { role: "status" } });
    const sync = () => {
      for (const input of inputs) input.disabled = all.checked;
      note.hidden = all.checked || inputs.some((input) => input.checked);
    };
    for (const input of [all, ...inputs]) input.addEventListener("change", sync);
    sync();
    return h(
      "fieldset",
      { className: "field", attrs: { "data-field": f.name, "aria-describedby": hintId } },
      legend,
      h("label", { className: "check" }, all, f.allLabel),
      h("div", { className: "checks" }, ...boxes),
      note,
      hint,
    );
  }
  if (f.type === "expiry") {
    const select = h(
      "select",
      { attrs: common },
      ...EXPIRY_CHOICES.map((c) => h("option", { text: t(/** @type {any} */ (`expiry.${c}`)), attrs: { value: c } })),
    );
    const at = h("input", { attrs: { type: "datetime-local", id: `${id}-at`, name: `${f.name}-at` } });
    const atLabel = h("label", { className: "field", attrs: { for: `${id}-at` } }, h("span", { text: t("switches.field.expiresAt") }), at);
    const sync = () => {
      atLabel.hidden = select.value !== "at";
      at.required = select.value === "at";
    };
    if (f.value) {
      // An expiry already set stays unless the person changes it.
      select.value = "at";
      at.value = toLocalInput(f.value);
    }
    sync();
    select.addEventListener("change", sync);
    return h("div", { className: "field-group", attrs: { "data-field": f.name } }, h("label", { className: "field", attrs: { for: id } }, h("span", { text: f.label }), select), atLabel, hint);
  }
  /** @type {HTMLElement} */
  let input;
  if (f.type === "textarea") {
    input = h("textarea", { attrs: { ...common, rows: 2, maxlength: f.maxLength, placeholder: f.placeholder }, props: { value: f.value ?? "" } });
  } else if (f.type === "select") {
    input = h("select", { attrs: common }, ...(f.options ?? []).map((o) => h("option", { text: o.label, attrs: { value: o.value }, props: { selected: o.value === f.value } })));
  } else if (f.type === "number") {
    input = h("input", { attrs: { ...common, type: "number", min: f.min ?? 1, step: f.step ?? 1, inputmode: "numeric", placeholder: f.placeholder }, props: { value: f.value ?? "" } });
  } else if (f.type === "datetime") {
    input = h("input", { attrs: { ...common, type: "datetime-local" }, props: { value: toLocalInput(f.value) } });
  } else {
    input = h("input", { attrs: { ...common, type: "text", maxlength: f.maxLength, placeholder: f.placeholder, autocomplete: "off" }, props: { value: f.value ?? "" } });
  }
  return h("label", { className: "field", attrs: { for: id, "data-field": f.name } }, h("span", { text: f.label }), input, hint);
}

/**
 * The values of the fields: trimmed text (null when empty), numbers (null when empty), the ticked
 * options (null when the "all" box is ticked), ISO instants, and an expiry as `{ ttlSeconds }` or
 * `{ expiresAt }` (empty for never).
 * @param {HTMLElement} container @param {Field[]} fields @returns {Record<string, any>}
 */
export function readFields(container, fields) {
  /** @type {Record<string, any>} */
  const values = {};
  for (const f of fields) {
    const el = /** @type {any} */ (container.querySelector(`[name="${f.name}"]`));
    if (f.type === "checkboxes") {
      const all = /** @type {HTMLInputElement | null} */ (container.querySelector(`input[name="${f.name}-all"]`));
      values[f.name] = all?.checked ? null : [...container.querySelectorAll(`input[name="${f.name}"]:checked`)].map((b) => /** @type {HTMLInputElement} */ (b).value);
    } else if (f.type === "number") {
      values[f.name] = el.value === "" ? null : Number(el.value);
    } else if (f.type === "datetime") {
      values[f.name] = fromLocalInput(el.value);
    } else if (f.type === "expiry") {
      const at = /** @type {HTMLInputElement} */ (container.querySelector(`[name="${f.name}-at"]`));
      values[f.name] = el.value === "never" ? {} : el.value === "at" ? { expiresAt: fromLocalInput(at.value) } : { ttlSeconds: Number(el.value) };
    } else if (f.type === "select") {
      values[f.name] = el.value;
    } else {
      const text = String(el.value).trim();
      values[f.name] = text === "" ? null : text;
    }
  }
  return values;
}

/**
 * Moves focus to the control the gateway named in an error (`limits.tokensPerDay` names the
 * `tokensPerDay` field), if the form has it.
 * @param {HTMLElement} container @param {string | undefined} param
 */
export function focusParam(container, param) {
  if (!param) return;
  const name = param.split(".").pop();
  const el = /** @type {HTMLElement | null} */ (container.querySelector(`[name="${name}"]`) ?? container.querySelector(`[data-field="${name}"] input`));
  el?.focus();
}
