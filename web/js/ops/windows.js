// @ts-check
// The time windows the usage and audit sections offer: presets that end now, or a custom range.
import { fromLocalInput, toLocalInput } from "./forms.js";
import { t } from "./i18n.js";

/** @type {Record<string, number>} */
const PRESETS = { hour: 3600e3, day: 86400e3, week: 7 * 86400e3 };

/**
 * The `from`/`to` query values of a window; a preset leaves `to` open so that what happens
 * while one looks is counted too.
 * @param {string} choice @param {HTMLInputElement} fromInput @param {HTMLInputElement} toInput
 * @returns {{ from: string | null, to: string | null }}
 */
export function windowRange(choice, fromInput, toInput) {
  if (choice === "custom") {
    const from = fromLocalInput(fromInput.value);
    const to = fromLocalInput(toInput.value);
    if (from && to && from >= to) throw new Error(t("usage.badRange"));
    return { from, to };
  }
  const span = PRESETS[choice];
  return { from: span ? new Date(Date.now() - span).toISOString() : null, to: null };
}

/**
 * Shows the custom range's inputs only when "custom" is picked, filled with the last day.
 * @param {HTMLSelectElement} select @param {HTMLElement[]} customFields @param {HTMLInputElement} fromInput @param {HTMLInputElement} toInput
 */
export function wireWindow(select, customFields, fromInput, toInput) {
  const sync = () => {
    const custom = select.value === "custom";
    for (const f of customFields) f.hidden = !custom;
    if (custom && !fromInput.value) {
      fromInput.value = toLocalInput(new Date(Date.now() - PRESETS.day));
      toInput.value = toLocalInput(new Date(Date.now() + 60e3));
    }
  };
  select.addEventListener("change", sync);
  sync();
}
