// @ts-check
// Small DOM helpers for the console. Text always goes in through textContent, so names and
// messages from the server (which anyone with a key can influence) can never become markup.

/**
 * The element with this id, or an error when the page and the script disagree about the markup.
 * @template {HTMLElement} T @param {string} id @param {new () => T} type @returns {T}
 */
export function $(id, type) {
  const el = document.getElementById(id);
  if (!(el instanceof type)) throw new Error(`ops console: #${id} is missing or not a ${type.name}`);
  return el;
}

/**
 * @typedef {{ className?: string, text?: string | number | null, attrs?: Record<string, string | number | boolean | null | undefined>,
 *             on?: Record<string, (e: any) => void>, props?: Record<string, unknown> }} Props
 */

/**
 * Builds an element: `h("td", { className: "num", text: 3 })`. Children may be nodes or strings
 * (strings become text nodes). Attributes with a null, undefined or false value are left out.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag @param {Props} [props] @param {...(Node | string | null | undefined | false)} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  if (props.className) el.className = props.className;
  if (props.text !== undefined && props.text !== null) el.textContent = String(props.text);
  for (const [name, value] of Object.entries(props.attrs ?? {})) {
    if (value === null || value === undefined || value === false) continue;
    el.setAttribute(name, value === true ? "" : String(value));
  }
  for (const [name, value] of Object.entries(props.props ?? {})) {
    /** @type {any} */ (el)[name] = value;
  }
  for (const [type, handler] of Object.entries(props.on ?? {})) el.addEventListener(type, handler);
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child);
  }
  return el;
}

/**
 * A table body's rows, each cell labelled with its column's heading so that the narrow layout
 * (one card per row) can show the heading next to the value.
 * @param {HTMLTableElement} table @param {Array<Array<Node | string>>} rows
 * @param {(row: number) => Props} [rowProps]
 */
export function fillTable(table, rows, rowProps) {
  const headings = [...table.tHead?.rows[0]?.cells ?? []].map((c) => c.textContent ?? "");
  const body = table.tBodies[0] ?? table.createTBody();
  body.replaceChildren(
    ...rows.map((cells, i) =>
      h("tr", rowProps?.(i) ?? {}, ...cells.map((cell, j) => h("td", { attrs: { "data-label": headings[j] ?? "" } }, cell))),
    ),
  );
}

/** A table's heading row from column names. @param {HTMLTableElement} table @param {string[]} names */
export function setHeadings(table, names) {
  const head = table.tHead ?? table.createTHead();
  head.replaceChildren(h("tr", {}, ...names.map((n) => h("th", { text: n, attrs: { scope: "col" } }))));
}
