// Analytics page: per-coin KPIs and risk, correlations, drawdowns, monthly returns and portfolio
// suggestions from GET /api/v1/analytics, drawn with plotly.js (window.Plotly); every table is a
// CSV download from /api/v1/analytics.csv. The page builds its own DOM inside #page-analytics.

import { MIN_N, tooFew } from "./honest.js";
import { ApiError, requestJSON } from "./api.js";
import { formatCompact, formatInt, formatPrice, splitSymbol } from "./format.js";

const PERIODS = [["30d", "30D"], ["12w", "12W"], ["6m", "6M"], ["1y", "1Y"], ["all", "All"]];
const INTERVALS = ["1h", "1d"];
const STORE = "coincast.analytics";
// Ten hues that read on both the dark and the light panel.
const PALETTE = ["#4c8dff", "#f0b90b", "#26a69a", "#ef5350", "#ab7df8", "#29b6f6", "#ff8a50", "#8bc34a", "#ec5f9b", "#a1887f"];

const pct = (x, digits = 2) => (Number.isFinite(x) ? `${(x * 100).toFixed(digits)}%` : "—");
const signedPct = (x, digits = 2) => (Number.isFinite(x) ? `${x > 0 ? "+" : x < 0 ? "−" : ""}${Math.abs(x * 100).toFixed(digits)}%` : "—");
const ratio = (x) => (Number.isFinite(x) ? x.toFixed(2) : "—");
const tone = (x) => (Number.isFinite(x) && x !== 0 ? (x > 0 ? "up" : "down") : "");
const TREND = { up: "▲ up", down: "▼ down", flat: "► flat" };

/** KPI table columns: key in the API's kpis rows, header, cell text, cell class, header tooltip. */
const COLUMNS = [
  { key: "symbol", label: "Coin", text: (v) => coinHtml(v), html: true, left: true },
  { key: "last_price", label: "Last", text: (v) => formatPrice(v) },
  { key: "avg_price", label: "Avg price", text: (v) => formatPrice(v), tip: "mean close over the window" },
  { key: "avg_volume", label: "Avg volume", text: (v) => formatCompact(v), tip: "mean base volume per candle" },
  { key: "period_return", label: "Return", text: (v) => signedPct(v), cls: tone, tip: "last close / first open − 1" },
  { key: "return_30d", label: "30d", text: (v) => signedPct(v), cls: tone },
  { key: "trend_30d", label: "Trend 30d", text: (v) => TREND[v] || "—", cls: (v) => (v === "up" || v === "down" ? v : ""), tip: "sign of a log-price regression over the last 30 days" },
  { key: "ann_volatility", label: "Volatility", text: (v) => pct(v, 1), annualised: true, tip: "annualised, from daily returns (365 days)" },
  { key: "max_drawdown", label: "Max DD", text: (v) => pct(v, 1), cls: (v) => (v < 0 ? "down" : ""), tip: "largest fall from a running peak" },
  { key: "var_95_hist", label: "VaR 95", text: (v) => pct(v), tip: "1-day 95% value at risk, historical" },
  { key: "cvar_95_hist", label: "CVaR 95", text: (v) => pct(v), tip: "1-day 95% expected shortfall, historical" },
  { key: "var_95_param", label: "VaR 95 N", text: (v) => pct(v), tip: "1-day 95% value at risk, normal (parametric)" },
  { key: "cvar_95_param", label: "CVaR 95 N", text: (v) => pct(v), tip: "1-day 95% expected shortfall, normal (parametric)" },
  { key: "sharpe", label: "Sharpe", text: ratio, cls: tone, annualised: true, tip: `annualised, risk-free 0 (from ${MIN_N} daily returns)` },
  { key: "sortino", label: "Sortino", text: ratio, cls: tone, annualised: true, tip: "annualised, downside deviation" },
];

const RISK = [
  ["ann_volatility", "Volatility", (v) => v],
  ["max_drawdown", "Max drawdown", (v) => (Number.isFinite(v) ? -v : v)],
  ["cvar_95_hist", "CVaR 95", (v) => v],
  ["var_95_hist", "VaR 95", (v) => v],
];

const STRATEGY = { min_variance: "Min variance", risk_parity: "Risk parity", max_sharpe: "Max Sharpe", equal_weight: "Equal weight" };

function coinHtml(symbol) {
  const [base, quote] = splitSymbol(symbol || "");
  return `<span class="an-dot" style="--c:${colorOf(symbol)}"></span><span class="base">${esc(base)}</span><span class="quote">${esc(quote)}</span>`;
}

const colorIndex = new Map();
function colorOf(symbol) {
  if (!colorIndex.has(symbol)) colorIndex.set(symbol, PALETTE[colorIndex.size % PALETTE.length]);
  return colorIndex.get(symbol);
}

function esc(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

function cssVar(name, fallback) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
}

function el(tag, attrs = {}, html = "") {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (html) e.innerHTML = html;
  return e;
}

function load() {
  try {
    return JSON.parse(localStorage.getItem(STORE) || "{}") || {};
  } catch {
    return {};
  }
}

function save(value) {
  try {
    localStorage.setItem(STORE, JSON.stringify(value));
  } catch {
    /* storage disabled: the choice just is not remembered */
  }
}

const PAGE_HTML = `
  <section class="panel an-bar" aria-label="Analytics settings">
    <div class="an-title"><h1>Market analytics</h1><span class="an-meta" id="an-meta">—</span></div>
    <div class="an-controls">
      <div class="seg" role="group" aria-label="Period" id="an-periods"></div>
      <div class="seg" role="group" aria-label="Candles" id="an-intervals"></div>
      <button type="button" class="icon-btn an-refresh" id="an-refresh" title="Reload" aria-label="Reload analytics">
        <svg class="icon" viewBox="0 0 24 24" aria-hidden="true"><path d="M20 12a8 8 0 1 1-2.4-5.7M20 4v5h-5"/></svg>
      </button>
    </div>
  </section>
  <ul class="an-notes" id="an-notes" hidden></ul>
  <section class="panel an-empty" id="an-empty" hidden aria-live="polite">
    <svg class="an-empty-icon" viewBox="0 0 48 48" aria-hidden="true"><path d="M8 40V8M8 40h32M15 32l7-9 6 5 10-13"/></svg>
    <h2 id="an-empty-title">No analytics yet</h2>
    <p id="an-empty-detail"></p>
    <div class="an-cmds" id="an-empty-cmds"></div>
  </section>
  <div class="an-grid" id="an-grid" hidden>
    <section class="panel an-card an-wide" aria-label="Per-coin statistics">
      <div class="panel-head"><h2>Per-coin statistics</h2><span class="panel-sub" id="an-kpi-sub"></span>${csv("kpis")}</div>
      <div class="an-table-wrap"><table class="an-kpis" id="an-kpis"><thead></thead><tbody></tbody></table></div>
    </section>
    <section class="panel an-card" aria-label="Correlation">
      <div class="panel-head"><h2>Correlation of daily returns</h2>${csv("correlation")}</div>
      <div class="an-plot" id="an-corr"></div>
    </section>
    <section class="panel an-card" aria-label="Risk">
      <div class="panel-head"><h2>Risk</h2><div class="seg seg-sm" role="group" aria-label="Risk measure" id="an-risk-pick"></div></div>
      <div class="an-plot" id="an-risk"></div>
    </section>
    <section class="panel an-card" aria-label="Drawdown">
      <div class="panel-head"><h2>Drawdown from running peak</h2>${csv("drawdown")}</div>
      <div class="an-plot" id="an-dd"></div>
    </section>
    <section class="panel an-card" aria-label="Portfolio suggestions">
      <div class="panel-head"><h2>Portfolio suggestions</h2>${csv("portfolios", "Summary CSV")}${csv("weights", "Weights CSV")}</div>
      <div class="an-plot an-plot-sm" id="an-weights"></div>
      <table class="an-port" id="an-port"><thead><tr><th scope="col">Strategy</th><th scope="col" class="num">Expected return</th><th scope="col" class="num">Volatility</th><th scope="col" class="num">Sharpe</th></tr></thead><tbody></tbody></table>
      <p class="an-fine" id="an-port-note">Annualised historical estimates from daily returns: not forecasts, not advice.</p>
    </section>
    <section class="panel an-card an-wide" aria-label="Monthly returns">
      <div class="panel-head"><h2>Monthly returns</h2>${csv("monthly", "Monthly CSV")}${csv("weekly", "Weekly CSV")}</div>
      <div class="an-plot an-plot-sm" id="an-monthly"></div>
    </section>
  </div>`;

function csv(table, label = "CSV") {
  return `<a class="an-csv" data-table="${table}" href="#" download title="Download ${table} as CSV">
    <svg viewBox="0 0 16 16" aria-hidden="true"><path d="M8 2v8m-3.5-3.5L8 10l3.5-3.5M3 13h10"/></svg>${label}</a>`;
}

export class AnalyticsPage {
  /** @param {HTMLElement} root the page container (#page-analytics) */
  constructor(root) {
    this.root = root;
    const saved = load();
    this.period = PERIODS.some(([p]) => p === saved.period) ? saved.period : "all";
    this.interval = INTERVALS.includes(saved.interval) ? saved.interval : "1h";
    this.risk = RISK.some(([k]) => k === saved.risk) ? saved.risk : "ann_volatility";
    this.sort = { key: "symbol", dir: 1 };
    this.data = null;
    this.seq = 0;
    this.abort = null;
    this.built = false;
    this.visible = false;
    this.plots = [];
  }

  /** Show the page (building it on first use) and load the report for the current choices. */
  show() {
    this.visible = true;
    if (!this.built) this.#build();
    this.#renderControls();
    if (this.data && this.data.period === this.period && this.data.interval === this.interval) this.#renderAll();
    else this.reload();
  }

  hide() {
    this.visible = false;
  }

  /** Redraw the charts in the current theme's colours. */
  refreshTheme() {
    if (this.visible && this.data) this.#renderCharts();
  }

  async reload() {
    if (this.abort) this.abort.abort();
    const ctrl = new AbortController();
    this.abort = ctrl;
    const seq = ++this.seq;
    // missing_ok: "no data yet" comes back as 200 {available: false}, an expected state, not a failed request
    const q = new URLSearchParams({ period: this.period, interval: this.interval, missing_ok: "true" });
    this.root.classList.add("loading");
    this.#meta(`Loading ${this.interval} analytics…`);
    try {
      const body = await requestJSON("GET", `/api/v1/analytics?${q}`, { signal: ctrl.signal });
      if (seq !== this.seq) return;
      if (body.available === false) {
        this.data = null;
        this.#empty(new ApiError(200, body.error, body.detail));
        return;
      }
      this.data = body;
      this.#renderAll();
    } catch (err) {
      if (seq !== this.seq || err.name === "AbortError") return;
      this.data = null;
      this.#empty(err);
    } finally {
      if (seq === this.seq) this.root.classList.remove("loading");
    }
  }

  // ------------------------------------------------------------------------------------------ build

  #build() {
    this.root.innerHTML = PAGE_HTML;
    const $ = (id) => this.root.querySelector(`#${id}`);
    const seg = (group, items, current, pick) => {
      group.replaceChildren(
        ...items.map(([value, label]) => {
          const b = el("button", { type: "button", class: "seg-btn", "data-value": value });
          b.textContent = label;
          b.addEventListener("click", () => pick(value));
          return b;
        }),
      );
    };
    seg($("an-periods"), PERIODS, this.period, (p) => this.#choose({ period: p }));
    seg($("an-intervals"), INTERVALS.map((i) => [i, i]), this.interval, (i) => this.#choose({ interval: i }));
    seg($("an-risk-pick"), RISK.map(([k, label]) => [k, label]), this.risk, (k) => {
      this.risk = k;
      this.#persist();
      this.#renderControls();
      if (this.data) this.#renderRisk();
    });
    $("an-refresh").addEventListener("click", () => this.reload());
    $("an-kpis").tHead.addEventListener("click", (ev) => {
      const th = ev.target.closest("th[data-key]");
      if (!th) return;
      const key = th.dataset.key;
      this.sort = { key, dir: this.sort.key === key ? -this.sort.dir : key === "symbol" ? 1 : -1 };
      this.#renderKpis();
    });
    for (const id of ["an-corr", "an-risk", "an-dd", "an-weights", "an-monthly"]) {
      const node = $(id);
      this.plots.push(node);
      new ResizeObserver(() => {
        if (this.visible && node.data && window.Plotly) window.Plotly.Plots.resize(node).catch(() => {});
      }).observe(node);
    }
    this.built = true;
  }

  #choose(change) {
    Object.assign(this, change);
    this.#persist();
    this.#renderControls();
    this.reload();
  }

  #persist() {
    save({ period: this.period, interval: this.interval, risk: this.risk });
  }

  #renderControls() {
    const mark = (id, value) => {
      for (const b of this.root.querySelectorAll(`#${id} .seg-btn`)) {
        const on = b.dataset.value === value;
        b.classList.toggle("active", on);
        b.setAttribute("aria-pressed", on ? "true" : "false");
      }
    };
    mark("an-periods", this.period);
    mark("an-intervals", this.interval);
    mark("an-risk-pick", this.risk);
    const q = new URLSearchParams({ period: this.period, interval: this.interval });
    for (const a of this.root.querySelectorAll(".an-csv")) {
      q.set("table", a.dataset.table);
      a.href = `/api/v1/analytics.csv?${q}`;
    }
  }

  #meta(text) {
    this.root.querySelector("#an-meta").textContent = text;
  }

  // ------------------------------------------------------------------------------------------ render

  #empty(err) {
    const $ = (id) => this.root.querySelector(`#${id}`);
    $("an-grid").hidden = true;
    $("an-notes").hidden = true;
    $("an-empty").hidden = false;
    const noData = err instanceof ApiError && (err.code === "no_data" || err.code === "not_enough_data");
    $("an-empty-title").textContent = !noData ? "Analytics unavailable" : err.code === "no_data" ? "No market history yet" : "Not enough history yet";
    $("an-empty-detail").textContent = noData
      ? "Analytics need candles spanning at least three UTC days. With Binance reachable, coincast downloads the history in the background (progress in the status bar below); the simulator generates it on the first start. This page fills in by itself."
      : `The server answered: ${err.message}`;
    $("an-empty-cmds").innerHTML = "";
    this.#meta(noData ? "no data" : "error");
  }

  #renderAll() {
    const d = this.data;
    const $ = (id) => this.root.querySelector(`#${id}`);
    $("an-empty").hidden = true;
    $("an-grid").hidden = false;
    for (const s of d.symbols) colorOf(s);
    const day = (iso) => (iso || "").slice(0, 10);
    const source = d.source === "lake" ? "History lake" : "Live store";
    const at = (d.computed_at || "").slice(11, 16);
    this.#meta(
      `${source} · ${d.symbols.length} coins · ${day(d.window.start)} → ${day(d.window.end)} UTC · ` +
        `${formatInt(d.rows_total)} ${d.interval} candles · computed ${at} UTC`,
    );
    $("an-kpi-sub").textContent = `${d.period === "all" ? "whole history" : `last ${d.period}`} · risk from daily returns`;
    const notes = $("an-notes");
    notes.replaceChildren(...(d.notes || []).map((n) => el("li", {}, esc(n))));
    notes.hidden = !(d.notes || []).length;
    this.#renderKpis();
    this.#renderPortfolioTable();
    this.#renderCharts();
  }

  #renderKpis() {
    const table = this.root.querySelector("#an-kpis");
    const { key, dir } = this.sort;
    table.tHead.innerHTML = `<tr>${COLUMNS.map((c) => {
      const sorted = c.key === key ? (dir > 0 ? "ascending" : "descending") : "none";
      const arrow = c.key === key ? (dir > 0 ? "▲" : "▼") : "";
      return `<th scope="col" data-key="${c.key}" class="${c.left ? "" : "num"}" aria-sort="${sorted}" title="${esc(c.tip || "Sort")}"><button type="button">${c.label}<i>${arrow}</i></button></th>`;
    }).join("")}</tr>`;
    const rows = [...(this.data ? this.data.kpis : [])].sort((a, b) => {
      const x = a[key];
      const y = b[key];
      if (x === y) return 0;
      if (x === null || x === undefined) return 1; // missing values last either way
      if (y === null || y === undefined) return -1;
      return (x < y ? -1 : 1) * dir;
    });
    table.tBodies[0].innerHTML = rows
      .map((r) => `<tr data-symbol="${esc(r.symbol)}">${COLUMNS.map((c) => {
        const v = r[c.key];
        const few = c.annualised && tooFew(r.daily_returns);
        const cls = [c.left ? "" : "num", c.cls && !few ? c.cls(v) : ""].join(" ").trim();
        const text = few ? "—" : c.html ? c.text(v) : esc(c.text(v));
        const title = few ? ` title="only ${r.daily_returns ?? 0} daily returns: not annualised below ${MIN_N}"` : "";
        return `<td class="${cls}"${title}>${text}</td>`;
      }).join("")}</tr>`)
      .join("");
  }

  #renderPortfolioTable() {
    const body = this.root.querySelector("#an-port").tBodies[0];
    const ports = this.data.portfolios || [];
    body.innerHTML = ports.length
      ? ports.map((p) => `<tr><td>${esc(STRATEGY[p.strategy] || p.strategy)}</td><td class="num ${tone(p.expected_return)}">${signedPct(p.expected_return, 1)}</td><td class="num">${pct(p.volatility, 1)}</td><td class="num">${ratio(p.sharpe)}</td></tr>`).join("")
      : `<tr><td colspan="4" class="an-fine">Needs at least two coins with more common days than coins.</td></tr>`;
  }

  #theme() {
    return {
      panel: cssVar("--panel", "#10161d"),
      panel2: cssVar("--panel-2", "#151c25"),
      text: cssVar("--text", "#e6edf3"),
      dim: cssVar("--text-dim", "#8b98a5"),
      grid: cssVar("--chart-grid", "rgba(128,128,128,0.15)"),
      axis: cssVar("--border", "#1f2833"),
      up: cssVar("--up", "#26a69a"),
      down: cssVar("--down", "#ef5350"),
      accent: cssVar("--accent", "#4c8dff"),
    };
  }

  #layout(c, extra = {}) {
    const axis = { gridcolor: c.grid, linecolor: c.axis, zeroline: false, tickfont: { color: c.dim, size: 11 }, automargin: true };
    return {
      paper_bgcolor: c.panel,
      plot_bgcolor: c.panel,
      font: { family: getComputedStyle(document.body).fontFamily, color: c.dim, size: 11 },
      margin: { l: 8, r: 12, t: 8, b: 8 },
      xaxis: { ...axis, ...(extra.xaxis || {}) },
      yaxis: { ...axis, ...(extra.yaxis || {}) },
      hoverlabel: { bgcolor: c.panel2, bordercolor: c.axis, font: { color: c.text, size: 12 } },
      legend: { font: { color: c.dim, size: 11 }, orientation: "h", y: -0.12, x: 0 },
      showlegend: false,
      ...Object.fromEntries(Object.entries(extra).filter(([k]) => k !== "xaxis" && k !== "yaxis")),
    };
  }

  #plot(id, traces, layout) {
    if (!window.Plotly) return;
    const node = this.root.querySelector(`#${id}`);
    window.Plotly.react(node, traces, layout, { displayModeBar: false, responsive: true });
  }

  #renderCharts() {
    this.#renderCorrelation();
    this.#renderRisk();
    this.#renderDrawdown();
    this.#renderWeights();
    this.#renderMonthly();
  }

  #renderCorrelation() {
    const c = this.#theme();
    const { symbols, matrix } = this.data.correlation;
    const names = symbols.map((s) => splitSymbol(s)[0]);
    const n = names.length;
    // numbers in the cells only when they fit (a phone shows ten coins' cells ~25 px wide)
    const cellPx = (this.root.querySelector("#an-corr").clientWidth - 90) / Math.max(n, 1);
    const digits = n > 12 || cellPx < 22 ? "" : cellPx < 34 ? "%{z:.1f}" : "%{z:.2f}";
    this.#plot(
      "an-corr",
      [{
        type: "heatmap", x: names, y: names, z: matrix, zmin: -1, zmax: 1, xgap: 2, ygap: 2,
        colorscale: [[0, c.down], [0.5, c.panel2], [1, c.accent]],
        texttemplate: digits, textfont: { size: cellPx < 34 ? 9 : 11 }, // colour "auto": contrasts each cell
        hovertemplate: "%{y} · %{x}<br>ρ = %{z:.3f}<extra></extra>",
        colorbar: { thickness: 10, outlinewidth: 0, tickfont: { color: c.dim, size: 10 }, len: 0.9 },
      }],
      this.#layout(c, { yaxis: { autorange: "reversed", showgrid: false, ticks: "" }, xaxis: { showgrid: false, ticks: "", side: "bottom" } }),
    );
  }

  #renderRisk() {
    const c = this.#theme();
    const [key, label, value] = RISK.find(([k]) => k === this.risk);
    const rows = this.data.kpis
      .map((k) => ({ s: k.symbol, v: value(k[key]) }))
      .filter((r) => Number.isFinite(r.v))
      .sort((a, b) => b.v - a.v);
    const daily = key === "var_95_hist" || key === "cvar_95_hist";
    this.#plot(
      "an-risk",
      [{
        type: "bar", x: rows.map((r) => splitSymbol(r.s)[0]), y: rows.map((r) => r.v),
        marker: { color: rows.map((r) => colorOf(r.s)), line: { width: 0 } },
        text: rows.map((r) => pct(r.v, 1)), textposition: "outside", textfont: { color: c.dim, size: 10 }, cliponaxis: false,
        hovertemplate: `%{x}<br>${label}${daily ? " (1 day)" : ""}: %{y:.2%}<extra></extra>`,
      }],
      this.#layout(c, { yaxis: { tickformat: ".0%", rangemode: "tozero" }, xaxis: { showgrid: false }, bargap: 0.35, margin: { l: 8, r: 12, t: 18, b: 8 } }),
    );
  }

  #renderDrawdown() {
    const c = this.#theme();
    const curves = this.data.drawdown || {};
    const traces = Object.entries(curves).map(([s, cur]) => ({
      type: "scatter", mode: "lines", name: splitSymbol(s)[0],
      x: cur.t.map((t) => new Date(t)), y: cur.dd,
      line: { color: colorOf(s), width: 1.4 },
      hovertemplate: `${splitSymbol(s)[0]} %{y:.1%}<extra></extra>`,
    }));
    this.#plot(
      "an-dd",
      traces,
      this.#layout(c, {
        yaxis: { tickformat: ".0%", zeroline: true, zerolinecolor: c.axis }, xaxis: { type: "date" },
        hovermode: "x unified", showlegend: true, legend: { font: { color: c.dim, size: 11 }, orientation: "h", y: -0.14, x: 0 },
        margin: { l: 8, r: 12, t: 8, b: 8 },
      }),
    );
  }

  #renderWeights() {
    const c = this.#theme();
    const ports = this.data.portfolios || [];
    const strategies = ports.map((p) => STRATEGY[p.strategy] || p.strategy);
    const traces = this.data.symbols.map((s) => ({
      type: "bar", orientation: "h", name: splitSymbol(s)[0], y: strategies,
      x: ports.map((p) => (p.weights && p.weights[s]) || 0),
      marker: { color: colorOf(s), line: { width: 0 } },
      hovertemplate: `%{y} · ${splitSymbol(s)[0]} %{x:.1%}<extra></extra>`,
    }));
    this.#plot(
      "an-weights",
      traces,
      this.#layout(c, {
        barmode: "stack", bargap: 0.3, showlegend: true,
        xaxis: { tickformat: ".0%", range: [0, 1] }, yaxis: { autorange: "reversed", showgrid: false },
        legend: { font: { color: c.dim, size: 11 }, orientation: "h", y: -0.22, x: 0, traceorder: "normal" },
      }),
    );
  }

  #renderMonthly() {
    const c = this.#theme();
    const rows = this.data.monthly || [];
    const months = [...new Set(rows.map((r) => r.period.slice(0, 7)))].sort();
    const symbols = this.data.symbols;
    const at = new Map(rows.map((r) => [`${r.symbol}|${r.period.slice(0, 7)}`, r.return]));
    const z = symbols.map((s) => months.map((m) => at.get(`${s}|${m}`) ?? null));
    const lim = Math.max(0.05, ...z.flat().filter(Number.isFinite).map(Math.abs));
    this.#plot(
      "an-monthly",
      [{
        type: "heatmap", x: months, y: symbols.map((s) => splitSymbol(s)[0]), z, zmin: -lim, zmax: lim, xgap: 1, ygap: 1,
        colorscale: [[0, c.down], [0.5, c.panel2], [1, c.up]],
        texttemplate: months.length <= 18 ? "%{z:.0%}" : "", textfont: { size: 10 },
        hovertemplate: "%{y} · %{x}<br>%{z:.1%}<extra></extra>",
        colorbar: { thickness: 10, outlinewidth: 0, tickformat: ".0%", tickfont: { color: c.dim, size: 10 }, len: 0.9 },
      }],
      this.#layout(c, { xaxis: { type: "category", showgrid: false, ticks: "" }, yaxis: { autorange: "reversed", showgrid: false, ticks: "" } }),
    );
  }
}
