// @ts-check
// What both pages' string modules share: filling a string from a catalog, and translating the
// static text of a page. Each page keeps its own catalog and language choice.

/**
 * The string for `key` in the catalog of `lang` (English when it has none), with `{name}`
 * placeholders filled in.
 * @param {Record<string, Record<string, string>>} catalogs @param {string} lang @param {string} key
 * @param {Record<string, string | number>} [params]
 */
export function fill(catalogs, lang, key, params = {}) {
  const template = catalogs[lang]?.[key] ?? catalogs.en[key] ?? key;
  return template.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
}

/**
 * Fills the static text under `root`: `data-i18n` sets the text, `data-i18n-label` the
 * aria-label, `data-i18n-placeholder` the placeholder, `data-i18n-title` the tooltip.
 * @param {ParentNode} root @param {(key: any) => string} t
 */
export function translateElements(root, t) {
  for (const el of root.querySelectorAll("[data-i18n]")) {
    el.textContent = t(el.getAttribute("data-i18n"));
  }
  for (const [attr, name] of [["data-i18n-label", "aria-label"], ["data-i18n-placeholder", "placeholder"], ["data-i18n-title", "title"]]) {
    for (const el of root.querySelectorAll(`[${attr}]`)) {
      el.setAttribute(name, t(el.getAttribute(attr)));
    }
  }
}
