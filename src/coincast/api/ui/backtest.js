// Backtest page: trade a model's forecasts with fees and slippage and compare with buy-and-hold.
// Sources: a predictions parquet under the data directory (GET /api/v1/backtest/files) or the live
// stored forecasts (paper trading); runs POST /api/v1/backtest and draws the equity curve and the
// drawdown with plotly.js (window.Plotly). The page builds its own DOM inside #page-backtest.

import { MIN_N, toneIf, tooFew } from "./honest.js";
import { ApiError, requestJSON } from "./api.js";
import { formatPrice } from "./format.js";

const STORE = "coincast.backtest";
const LIVE = "__live__";
const STRATEGIES = [["long_short", "Long / short (sign of forecast)"], ["long_only", "Long only (sign of forecast)"], ["prob", "prob_up thresholds"]];
const SIZINGS = [["fixed", "Fixed fraction"], ["vol_target", "Volatility target"]];

const pct = (x, d = 2) => (Number.isFinite(x) ? `${(x * 100).toFixed(d)}%` : "—");
const signedPct = (x, d = 2) => (Number.isFinite(x) ? `${x > 0 ? "+" : x < 0 ? "−" : ""}${Math.abs(x * 100).toFixed(d)}%` : "—");
const ratio = (x) => (Number.isFinite(x) ? x.toFixed(2) : "—");
const tone = (x) => (Number.isFinite(x) && x !== 0 ? (x > 0 ? "up" : "down") : "");
const esc = (t) => String(t).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
const cssVar = (name, fallback) => getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
const when = (iso) => (iso ? iso.slice(0, 16).replace("T", " ") : "—");

/** Metrics table columns: key, header, cell text, tone, tooltip. */
const COLUMNS = [
  ["total_return", "Return", (v) => signedPct(v), tone, "final equity − 1, after fees and slippage"],
  ["annual_return", "Annual", (v, m) => annual(m, signedPct(v)), tone, `compounded to a 365-day year (withheld below ${MIN_N} periods)`],
  ["annual_volatility", "Volatility", (v, m) => annual(m, pct(v, 1)), null, "annualised, per holding period"],
  ["sharpe", "Sharpe", (v, m) => annual(m, ratio(v)), tone, `annualised, risk-free 0 (withheld below ${MIN_N} periods)`],
  ["sortino", "Sortino", (v, m) => annual(m, ratio(v)), tone, "annualised, downside deviation"],
  ["max_drawdown", "Max DD", (v) => pct(v, 1), (v) => (v < 0 ? "down" : ""), "largest fall from a running peak"],
  ["hit_rate", "Hit rate", (v) => pct(v, 1), null, "share of trades with a positive net return"],
  ["trades", "Trades", (v) => (Number.isFinite(v) ? String(v) : "—"), null, "runs of periods on one side"],
  ["turnover", "Turnover", (v) => (Number.isFinite(v) ? `${v.toFixed(1)}×` : "—"), null, "sum of |position changes| (× equity)"],
  ["exposure", "Exposure", (v) => pct(v, 0), null, "share of the time in a position"],
  ["fees_paid", "Costs", (v, m) => (Number.isFinite(v) ? pct(v + (m.slippage_paid || 0), 2) : "—"), null, "fees + slippage paid, as a share of the starting equity"],
];

/** An annualised figure, or "—" when the sample is too short to annualise honestly. */
const annual = (m, text) => (tooFew(m.periods) ? "—" : text);

function load() {
  try {
    return JSON.parse(localStorage.getItem(STORE) || "{}") || {};
  } catch {
    return {};
  }
}

export class BacktestPage {
  /** @param {HTMLElement} root the page container (#page-backtest) */
  constructor(root) {
    this.root = root;
    this.built = false;
    this.visible = false;
    this.data = null; // the last POST /api/v1/backtest answer
    this.selected = 0; // index into data.results
    this.busy = null; // AbortController of the request in flight
  }

  show() {
    this.visible = true;
    if (!this.built) this.#build();
    this.#loadFiles();
    this.#renderCharts();
  }

  hide() {
    this.visible = false;
  }

  refreshTheme() {
    if (this.visible) this.#renderCharts();
  }

  #$(id) {
    return this.root.querySelector(`#${id}`);
  }

  #build() {
    this.built = true;
    const saved = load();
    const opts = (list, value) => list.map(([v, t]) => `<option value="${v}"${v === value ? " selected" : ""}>${esc(t)}</option>`).join("");
    this.root.innerHTML = `
      <section class="bt-panel bt-form" aria-label="Backtest settings">
        <label>Forecasts <select id="bt-source"><option value="">loading…</option></select></label>
        <span class="bt-live" hidden>
          <label>Symbol <select id="bt-symbol"></select></label>
          <label>Horizon <select id="bt-horizon"><option value="${esc(saved.horizon || "1h")}">${esc(saved.horizon || "1h")}</option></select></label>
          <label>Model <select id="bt-model"></select></label>
        </span>
        <label>Strategy <select id="bt-strategy">${opts(STRATEGIES, saved.strategy || "long_short")}</select></label>
        <span class="bt-prob" hidden>
          <label title="go long above this prob_up">Long &gt; <input id="bt-prob-long" type="number" min="0" max="1" step="0.01" value="${saved.prob_long ?? 0.55}"></label>
          <label title="go short below this prob_up">Short &lt; <input id="bt-prob-short" type="number" min="0" max="1" step="0.01" value="${saved.prob_short ?? 0.45}"></label>
        </span>
        <label>Sizing <select id="bt-sizing">${opts(SIZINGS, saved.sizing || "fixed")}</select></label>
        <label title="fee per side, basis points of the traded notional">Fee bps <input id="bt-fee" type="number" min="0" max="1000" step="0.5" value="${saved.fee_bps ?? 10}"></label>
        <label title="slippage per trade, basis points">Slippage bps <input id="bt-slip" type="number" min="0" max="1000" step="0.5" value="${saved.slippage_bps ?? 5}"></label>
        <label class="bt-check" title="trade only when the forecast interval excludes the current price"><input id="bt-confident" type="checkbox"${saved.confident_only ? " checked" : ""}> Confident only</label>
        <button id="bt-run" type="button" class="bt-run">Run backtest</button>
        <span id="bt-status" class="bt-status" role="status"></span>
      </section>
      <section class="bt-panel" aria-label="Results">
        <div class="bt-head"><h2>Metrics</h2><span class="bt-note">click a row to chart it · buy-and-hold is cost free · a model that never trades (persistence) is the zero line</span></div>
        <p id="bt-warn" class="bt-warn" role="note" hidden></p>
        <div class="bt-scroll"><table id="bt-metrics" class="bt-table"><thead></thead><tbody><tr><td class="bt-empty">Pick forecasts and run a backtest.</td></tr></tbody></table></div>
      </section>
      <section class="bt-charts">
        <div class="bt-panel"><div class="bt-head"><h2 id="bt-eq-title">Equity</h2></div><div id="bt-equity" class="bt-plot"></div></div>
        <div class="bt-panel"><div class="bt-head"><h2>Drawdown</h2></div><div id="bt-drawdown" class="bt-plot"></div></div>
      </section>
      <section class="bt-panel" aria-label="Trades">
        <div class="bt-head"><h2>Trades</h2><span id="bt-trades-note" class="bt-note"></span></div>
        <div class="bt-scroll bt-trades"><table id="bt-trades" class="bt-table"><thead><tr>
          <th>Entry</th><th>Exit</th><th>Side</th><th>Weight</th><th>Entry price</th><th>Exit price</th><th>Periods</th><th>Gross</th><th>Net</th>
        </tr></thead><tbody></tbody></table></div>
      </section>`;
    this.#$("bt-source").addEventListener("change", () => this.#toggle());
    this.#$("bt-symbol").addEventListener("change", () => this.#loadModels());
    this.#$("bt-horizon").addEventListener("change", () => this.#loadModels());
    this.#$("bt-strategy").addEventListener("change", () => this.#toggle());
    this.#$("bt-run").addEventListener("click", () => this.run());
    this.#$("bt-metrics").tBodies[0].addEventListener("click", (ev) => {
      const tr = ev.target.closest("tr[data-i]");
      if (!tr) return;
      this.selected = Number(tr.dataset.i);
      this.#render();
    });
    this.#toggle();
  }

  #toggle() {
    this.root.querySelector(".bt-live").hidden = this.#$("bt-source").value !== LIVE;
    this.root.querySelector(".bt-prob").hidden = this.#$("bt-strategy").value !== "prob";
  }

  async #loadFiles() {
    const select = this.#$("bt-source");
    try {
      const got = await requestJSON("GET", "/api/v1/backtest/files");
      const keep = select.value || load().source || "";
      const files = got.files.map((f) => `<option value="${esc(f.path)}">${esc(f.path)} (${f.rows.toLocaleString()} rows)</option>`);
      if (got.live) files.push(`<option value="${LIVE}">Live forecasts (paper trading)</option>`);
      select.innerHTML = files.join("") || `<option value="">no predictions file in the data directory (put them in data/backtests/)</option>`;
      if ([...select.options].some((o) => o.value === keep)) select.value = keep;
      const sym = this.#$("bt-symbol");
      const symKeep = sym.value || load().symbol;
      sym.innerHTML = got.symbols.map((s) => `<option>${esc(s)}</option>`).join("");
      if (got.symbols.includes(symKeep)) sym.value = symKeep;
      const { intervals } = await requestJSON("GET", "/api/v1/symbols");
      const hz = this.#$("bt-horizon");
      const hzKeep = hz.value || load().horizon || "1h";
      hz.innerHTML = intervals.map((iv) => `<option>${esc(iv)}</option>`).join("");
      hz.value = intervals.includes(hzKeep) ? hzKeep : intervals.includes("1h") ? "1h" : intervals[0];
      await this.#loadModels();
      this.#toggle();
      if (!got.files.length && !got.live) {
        this.#status("Nothing to backtest yet: promote a model on the Models page and let it forecast for a while.", "warn");
      }
    } catch (err) {
      this.#status(`could not list predictions files: ${err.message}`, "error");
    }
  }

  /** The registered models of the chosen symbol and horizon, live ones first. */
  async #loadModels() {
    const select = this.#$("bt-model");
    const keep = select.value || load().model || "";
    const symbol = this.#$("bt-symbol").value;
    const horizon = this.#$("bt-horizon").value;
    if (!symbol || !horizon) return;
    try {
      const got = await requestJSON("GET", `/api/v1/models?symbol=${encodeURIComponent(symbol)}&horizon=${encodeURIComponent(horizon)}`);
      const rows = [...got.models].sort((a, b) => Number(Boolean(b.live)) - Number(Boolean(a.live)) || b.created_ms - a.created_ms);
      select.innerHTML = rows.length
        ? rows.map((v) => `<option value="${esc(v.id)}">${esc(v.model)}${v.live ? " · live" : ""} · ${esc(v.id.slice(-6))}</option>`).join("")
        : `<option value="">no ${esc(horizon)} model for ${esc(symbol)}: train one on the Models page</option>`;
      if (rows.some((v) => v.id === keep)) select.value = keep;
    } catch (err) {
      select.innerHTML = `<option value="">models unavailable (${esc(err.message)})</option>`;
    }
  }

  #params() {
    const num = (id) => Number(this.#$(id).value);
    const p = {
      strategy: this.#$("bt-strategy").value, sizing: this.#$("bt-sizing").value,
      fee_bps: num("bt-fee"), slippage_bps: num("bt-slip"), prob_long: num("bt-prob-long"), prob_short: num("bt-prob-short"),
      confident_only: this.#$("bt-confident").checked,
    };
    const source = this.#$("bt-source").value;
    localStorage.setItem(STORE, JSON.stringify({ ...p, source, symbol: this.#$("bt-symbol").value, model: this.#$("bt-model").value, horizon: this.#$("bt-horizon").value }));
    if (source === LIVE) return { ...p, symbol: this.#$("bt-symbol").value, model: this.#$("bt-model").value, horizon: this.#$("bt-horizon").value };
    return { ...p, path: source };
  }

  #status(text, kind = "") {
    const el = this.#$("bt-status");
    el.textContent = text;
    el.dataset.kind = kind;
  }

  /** Run the backtest with the form's settings. */
  async run() {
    const body = this.#params();
    if (!body.path && !(body.symbol && body.model)) {
      this.#status(body.symbol ? `No ${body.horizon} model of ${body.symbol} to backtest: train one on the Models page.` : "Pick a predictions file.", "warn");
      return;
    }
    if (this.busy) this.busy.abort();
    const ctl = new AbortController();
    this.busy = ctl;
    this.#$("bt-run").disabled = true;
    this.#status("running…");
    try {
      const data = await requestJSON("POST", "/api/v1/backtest", { body, signal: ctl.signal });
      this.data = data;
      const first = data.results.findIndex((r) => r.model !== "persistence");
      this.selected = Math.max(0, first);
      const pos = data.position;
      this.#status(`${data.results.length} result${data.results.length === 1 ? "" : "s"}` + (pos ? ` · open position ${pos.weight > 0 ? "long" : "short"} ${Math.abs(pos.weight).toFixed(2)}` : ""), "ok");
      this.#render();
    } catch (err) {
      if (err.name === "AbortError") return;
      this.#status(err instanceof ApiError ? err.message : `request failed: ${err.message}`, "error");
    } finally {
      if (this.busy === ctl) {
        this.busy = null;
        this.#$("bt-run").disabled = false;
      }
    }
  }

  #render() {
    this.#renderMetrics();
    this.#renderTrades();
    this.#renderCharts();
  }

  #renderMetrics() {
    const table = this.#$("bt-metrics");
    const results = this.data ? this.data.results : [];
    table.tHead.innerHTML = `<tr><th class="left">Symbol</th><th class="left">Strategy of</th>${COLUMNS.map(([, h, , , tip]) => `<th title="${esc(tip)}">${h}</th>`).join("")}</tr>`;
    const row = (sym, name, m, attrs) =>
      `<tr ${attrs}><td class="left">${esc(sym)}</td><td class="left">${esc(name)}</td>${COLUMNS.map(([k, , text, cls]) => {
        const v = m[k] ?? NaN;
        return `<td class="${cls ? toneIf(m.periods, cls(v)) : ""}">${text(v, m)}</td>`;
      }).join("")}</tr>`;
    const rows = [];
    let lastBench = "";
    results.forEach((r, i) => {
      const bench = JSON.stringify([r.symbol, r.buy_and_hold]);
      if (bench !== lastBench) {
        lastBench = bench;
        rows.push(row(r.symbol, "buy and hold", r.buy_and_hold, 'class="bt-bench"'));
      }
      rows.push(row(r.symbol, `${r.model} · ${r.horizon}`, r.metrics, `data-i="${i}" class="bt-pick${i === this.selected ? " selected" : ""}" tabindex="0"`));
    });
    table.tBodies[0].innerHTML = rows.join("") || `<tr><td class="bt-empty" colspan="${COLUMNS.length + 2}">Pick forecasts and run a backtest.</td></tr>`;
    const short = results.map((r) => r.metrics.periods).filter(tooFew);
    const warn = this.#$("bt-warn");
    warn.hidden = !short.length;
    warn.textContent = short.length
      ? `Short sample: ${Math.min(...short)} periods. A return over so few periods says little about the model; annualised figures are withheld and nothing is coloured below ${MIN_N} periods.`
      : "";
  }

  #renderTrades() {
    const res = this.data && this.data.results[this.selected];
    const tbody = this.#$("bt-trades").tBodies[0];
    if (!res) {
      tbody.innerHTML = "";
      this.#$("bt-trades-note").textContent = "";
      return;
    }
    const trades = [...res.trades].reverse();
    this.#$("bt-trades-note").textContent = `${res.symbol} · ${res.model}: ${trades.length < res.trades_total ? `the last ${trades.length} of ` : ""}${res.trades_total} trade${res.trades_total === 1 ? "" : "s"}, newest first`;
    tbody.innerHTML = trades.map((t) => `<tr>
      <td>${when(t.entry_time)}</td><td>${when(t.exit_time)}</td><td class="${t.side === "long" ? "up" : "down"}">${t.side}</td>
      <td>${Math.abs(t.weight).toFixed(2)}</td><td>${formatPrice(t.entry_price)}</td><td>${formatPrice(t.exit_price)}</td><td>${t.periods}</td>
      <td class="${tone(t.gross_return)}">${signedPct(t.gross_return)}</td><td class="${tone(t.net_return)}">${signedPct(t.net_return)}</td></tr>`).join("")
      || `<tr><td class="bt-empty" colspan="9">No trade: this strategy stayed flat (the zero line).</td></tr>`;
  }

  #renderCharts() {
    const res = this.data && this.data.results[this.selected];
    const eqEl = this.#$("bt-equity");
    const ddEl = this.#$("bt-drawdown");
    if (!window.Plotly || !eqEl || !res) return;
    this.#$("bt-eq-title").textContent = `Equity · ${res.symbol} · ${res.model} · ${res.horizon}`;
    const text = cssVar("--text-dim", "#8b98a5");
    const grid = cssVar("--chart-grid", "rgba(128,128,128,0.15)");
    const panel = cssVar("--panel", "#10161d");
    const accent = cssVar("--accent", "#4c8dff");
    const bench = cssVar("--ema", "#f0b90b");
    const faint = cssVar("--text-faint", "#5c6773");
    const x = res.equity.time;
    const axis = { gridcolor: grid, linecolor: grid, zeroline: false, tickfont: { color: text, size: 10 } };
    const layout = (yaxis) => ({
      paper_bgcolor: panel, plot_bgcolor: panel, font: { color: text, size: 11 },
      margin: { l: 48, r: 10, t: 8, b: 30 }, showlegend: true, hovermode: "x unified",
      legend: { orientation: "h", x: 0, y: 1, yanchor: "bottom", font: { color: text, size: 11 } },
      xaxis: { ...axis, type: "date" }, yaxis: { ...axis, ...yaxis },
    });
    const line = (name, y, color, extra = {}) => ({ type: "scatter", mode: "lines", name, x, y, line: { color, width: 1.8 }, ...extra });
    window.Plotly.react(eqEl, [
      line("strategy", res.equity.strategy, accent, { hovertemplate: "%{y:.4f}" }),
      line("buy and hold", res.equity.buy_and_hold, bench, { hovertemplate: "%{y:.4f}" }),
      line("flat (persistence)", x.map(() => 1), faint, { line: { color: faint, width: 1, dash: "dot" }, hoverinfo: "skip" }),
    ], layout({ title: { text: "equity (start = 1)", font: { size: 10, color: text } } }), { displayModeBar: false, responsive: true });
    window.Plotly.react(ddEl, [
      line("strategy", res.equity.drawdown, accent, { fill: "tozeroy", hovertemplate: "%{y:.2%}" }),
      line("buy and hold", res.equity.buy_and_hold_drawdown, bench, { hovertemplate: "%{y:.2%}" }),
    ], layout({ tickformat: ".0%" }), { displayModeBar: false, responsive: true });
  }
}
