// @ts-check
// Live: the gateway's state, re-read every few seconds while the section is on screen, with a
// small chart of each rate over the last minutes.
import { lineChart } from "./charts.js";
import { $, fillTable, h, setHeadings } from "./dom.js";
import { get } from "./http.js";
import { clock, has, num, percent, t } from "./i18n.js";

const POLL_MS = 3000;

/** @typedef {{ at: string, activeStreams: number, tokensPerSecond: number, requestsPerSecond: number, errorRate: number, queueDepth: number }} Sample */
/** @typedef {{ at: string, current: Sample | null, history: Sample[],
 *              replicas: { name: string, ready: boolean, outstanding: number, breaker: string, queueDepth: number | null, estimatedWaitSeconds: number | null }[],
 *              breakers: { name: string, state: string, failureRate: number, slowRate: number, bufferedCalls: number }[],
 *              activeSwitches: { kind: string, model: string | null, expiresAt: string | null }[],
 *              admission?: Admission[], streamsContinued?: number }} Snapshot */
/** @typedef {{ model: string, order: string, counters: string, capacity: number, inFlight: number,
 *              keys: { keyId: string, name: string, waiting: number, waitingEverywhere: number, servedTokens: number, share: number, counter: number }[] }} Admission */

/** @type {{ key: keyof Sample & string, label: import("./i18n.js").StringKey, format: (n: number) => string }[]} */
const METRICS = [
  { key: "activeStreams", label: "live.activeStreams", format: (n) => num(n) },
  { key: "tokensPerSecond", label: "live.tokensPerSecond", format: (n) => num(n, 1) },
  { key: "requestsPerSecond", label: "live.requestsPerSecond", format: (n) => num(n, 2) },
  { key: "errorRate", label: "live.errorRate", format: (n) => percent(n) },
  { key: "queueDepth", label: "live.queueDepth", format: (n) => num(n, 1) },
];

const ui = {
  updated: $("live-updated", HTMLElement),
  error: $("live-error", HTMLElement),
  stats: $("live-stats", HTMLElement),
  switches: $("live-switches", HTMLUListElement),
  replicas: $("live-replicas", HTMLTableElement),
  continued: $("live-continued", HTMLElement),
  breakers: $("live-breakers", HTMLTableElement),
  admission: $("live-admission", HTMLElement),
};

/** @type {Snapshot | null} */
let last = null;
/** @type {ReturnType<typeof setTimeout> | 0} */
let timer = 0;
let running = false;

/** A breaker or replica state as a coloured badge. @param {string} state */
function stateBadge(state) {
  const key = `breaker.${state}`;
  return h("span", { className: `badge state-${state}`, text: has(key) ? t(key) : state, attrs: { "data-state": state } });
}

function render() {
  const s = last;
  if (!s) return;
  ui.updated.textContent = t("updatedAt", { time: clock(s.at) });
  const minutes = s.history.length > 1 ? Math.max(1, Math.round((Date.parse(s.history.at(-1)?.at ?? "") - Date.parse(s.history[0].at)) / 60000)) : 0;
  ui.stats.replaceChildren(
    ...METRICS.map((m) => {
      const series = s.history.map((p) => Number(p[m.key]) || 0);
      const peak = Math.max(0, ...series);
      const current = s.current ? Number(s.current[m.key]) : null;
      return h(
        "div",
        { className: "stat", attrs: { "data-metric": m.key } },
        h("h3", { className: "stat-label", text: t(m.label) }),
        h("p", { className: "stat-value", text: current === null ? t("none") : m.format(current) }),
        series.length
          ? lineChart(series, t("live.chart", { name: t(m.label), minutes, value: m.format(peak) }))
          : h("p", { className: "hint", text: t("live.noData") }),
        h("p", { className: "stat-peak", text: `${t("live.peak", { value: m.format(peak) })} · ${t("live.window", { minutes })}` }),
      );
    }),
  );

  ui.switches.replaceChildren(
    ...(s.activeSwitches.length
      ? s.activeSwitches.map((sw) =>
          h(
            "li",
            { attrs: { "data-switch": sw.model ? `${sw.kind}:${sw.model}` : sw.kind } },
            h("span", { className: "badge state-on", text: t("state.on") }),
            " ",
            has(`switch.${sw.kind}`) ? t(/** @type {any} */ (`switch.${sw.kind}`)) : sw.kind,
            ` · ${sw.model ?? t("switches.everyModel")}`,
            sw.expiresAt ? ` · ${t("live.until", { time: clock(sw.expiresAt) })}` : "",
          ),
        )
      : [h("li", { className: "hint", text: t("live.noSwitches") })]),
  );

  setHeadings(ui.replicas, [t("live.replica"), t("live.ready"), t("live.outstanding"), t("live.breaker"), t("live.queue"), t("live.wait")]);
  fillTable(
    ui.replicas,
    s.replicas.map((r) => [
      h("span", { className: "mono", text: r.name }),
      h("span", { className: `badge ${r.ready ? "state-closed" : "state-open"}`, text: r.ready ? t("live.isReady") : t("live.notReady") }),
      num(r.outstanding),
      stateBadge(r.breaker),
      num(r.queueDepth, 1),
      r.estimatedWaitSeconds === null ? t("none") : t("seconds", { n: num(r.estimatedWaitSeconds, 1) }),
    ]),
    (i) => ({ attrs: { "data-replica": s.replicas[i].name } }),
  );

  // Each one is an answer that a failed replica would have cut (a stream_continued degradation).
  ui.continued.textContent = t("live.continued", { n: num(s.streamsContinued ?? 0) });

  renderAdmission(s.admission ?? []);

  setHeadings(ui.breakers, [t("live.breakerName"), t("live.breakerKind"), t("live.state"), t("live.failureRate"), t("live.slowRate"), t("live.calls")]);
  fillTable(
    ui.breakers,
    s.breakers.map((b) => {
      const [kind, ...rest] = b.name.split(":");
      const known = kind === "model" || kind === "replica";
      return [
        h("span", { className: "mono", text: known ? rest.join(":") : b.name }),
        known ? t(kind === "model" ? "live.kind.model" : "live.kind.replica") : t("none"),
        stateBadge(b.state),
        percent(b.failureRate / 100),
        percent(b.slowRate / 100),
        h("span", { className: "calls", text: num(b.bufferedCalls) }),
      ];
    }),
    (i) => ({ attrs: { "data-breaker": s.breakers[i].name } }),
  );
}

/**
 * Per capped model, its slots and the keys waiting for them or served by it in the last minute:
 * what fair admission decides on, so that an operator can see who is held back and who is served.
 * @param {Admission[]} models
 */
function renderAdmission(models) {
  if (!models.length) {
    ui.admission.replaceChildren(h("p", { className: "hint", text: t("live.noAdmission") }));
    return;
  }
  ui.admission.replaceChildren(
    ...models.map((m) => {
      const table = h("table", { className: "table" });
      setHeadings(table, [t("live.admissionKey"), t("live.waitingHere"), t("live.waitingEverywhere"), t("live.servedTokens"), t("live.share"), t("live.counter")]);
      fillTable(
        table,
        m.keys.map((k) => [
          h("span", { text: k.name, attrs: { title: k.keyId } }),
          h("span", { className: "waiting", text: num(k.waiting) }),
          h("span", { className: "waiting-everywhere", text: num(k.waitingEverywhere) }),
          num(k.servedTokens),
          h("span", { className: "share", text: percent(k.share) }),
          num(k.counter, 1),
        ]),
        (i) => ({ attrs: { "data-key": m.keys[i].keyId } }),
      );
      return h(
        "div",
        { className: "admission", attrs: { "data-model": m.model } },
        h("p", { className: "admission-model", text: t("live.admissionModel", { model: m.model, inFlight: num(m.inFlight), capacity: num(m.capacity), order: m.order, counters: m.counters }) }),
        m.keys.length ? table : h("p", { className: "hint", text: t("live.noWaiting") }),
      );
    }),
  );
}

/** Each start() begins a new round; a reply from an older round schedules nothing. */
let round = 0;

async function poll(/** @type {number} */ mine) {
  timer = 0;
  try {
    const snapshot = await get("/admin/status");
    if (mine !== round) return;
    last = snapshot;
    ui.error.textContent = "";
    render();
  } catch (e) {
    if (mine !== round) return;
    // Keep the last picture on screen, and say it is stale.
    ui.error.textContent = t("live.offline", { message: e instanceof Error ? e.message : String(e) });
    if (/** @type {any} */ (e)?.status === 401) return;
  }
  if (!document.hidden) timer = setTimeout(() => void poll(mine), POLL_MS);
}

/** Starts polling (the section is on screen). */
export function start() {
  stop();
  running = true;
  void poll(round);
}

/** Stops polling (another section, or signed out). */
export function stop() {
  running = false;
  round += 1;
  if (timer) clearTimeout(timer);
  timer = 0;
}

/** Redraws in the current language. */
export const refresh = render;

document.addEventListener("visibilitychange", () => {
  // A hidden tab does not poll; coming back re-reads at once.
  if (running && !document.hidden) start();
});
