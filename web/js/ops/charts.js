// @ts-check
// Small charts drawn here, with no library: an SVG line chart of a time series and a list of
// horizontal bars. Labels stay in HTML, outside the SVG, so the chart can stretch to any width
// without stretching its text.
import { h } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 300;
const HEIGHT = 60;

/**
 * @param {string} tag @param {Record<string, string | number>} attrs
 * @returns {SVGElement}
 */
function svg(tag, attrs) {
  const el = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, String(value));
  return el;
}

/**
 * A line chart of `values` (oldest first), scaled to its own maximum, as an image with a
 * spoken description.
 * @param {number[]} values @param {string} description
 * @returns {SVGSVGElement}
 */
export function lineChart(values, description) {
  const chart = /** @type {SVGSVGElement} */ (svg("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, preserveAspectRatio: "none", class: "line-chart", role: "img" }));
  chart.setAttribute("aria-label", description);
  const max = Math.max(0, ...values);
  const top = max > 0 ? max * 1.1 : 1;
  const step = values.length > 1 ? WIDTH / (values.length - 1) : WIDTH;
  const points = values.map((v, i) => [values.length > 1 ? i * step : WIDTH, HEIGHT - 1 - (Math.max(0, v) / top) * (HEIGHT - 2)]);
  if (points.length === 1) points.unshift([0, points[0][1]]);
  chart.dataset.points = String(values.length);
  chart.dataset.max = String(max);
  chart.append(svg("line", { x1: 0, x2: WIDTH, y1: HEIGHT - 0.5, y2: HEIGHT - 0.5, class: "axis" }));
  if (points.length) {
    const line = points.map(([x, y], i) => `${i ? "L" : "M"}${x.toFixed(1)},${y.toFixed(1)}`).join(" ");
    chart.append(svg("path", { d: `${line} L${WIDTH},${HEIGHT} L0,${HEIGHT} Z`, class: "area" }));
    chart.append(svg("path", { d: line, class: "line" }));
  }
  return chart;
}

/**
 * Horizontal bars, one per item, widths relative to the largest value.
 * @param {{ label: string, value: number, caption: string }[]} items @param {string} description
 * @returns {HTMLElement}
 */
export function barChart(items, description) {
  const max = Math.max(1, ...items.map((i) => i.value));
  return h(
    "ul",
    { className: "bar-chart", attrs: { "aria-label": description } },
    ...items.map((item) => {
      const fill = h("span", { className: "bar-fill" });
      // A share of the track; a tiny non-zero value still shows as a sliver.
      fill.style.width = `${item.value > 0 ? Math.max(0.5, (item.value / max) * 100) : 0}%`;
      return h(
        "li",
        {},
        h("span", { className: "bar-label", text: item.label }),
        h("span", { className: "bar-track" }, fill),
        h("span", { className: "bar-value", text: item.caption }),
      );
    }),
  );
}
