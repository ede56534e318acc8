// Models page: the registry (GET /api/v1/models) with promotion, a Train form (POST /api/v1/train)
// with the job's live loss / validation-loss curve, progress and ETA from the WebSocket "training"
// events, then its evaluation metrics or its error; a leaderboard against persistence and the live
// forecasts with their track record per symbol. The page builds its own DOM inside #page-models.

import { formatCandleTime, formatDuration, formatInt, formatPrice, priceDigits } from "./format.js";
import { esc, modelLabel, num, pct, requestJSON, trackItems } from "./forecast.js";

const KEY_STORE = "coincast.apiKey"; // sessionStorage: asked once per browser session
const LIVE_EVERY_MS = 5000;
// Family labels of the zoo served by GET /api/v1/model-families.
const FAMILY_LABELS = { baseline: "Baselines", gbm: "Gradient boosting", classifier: "Classifiers (P(up))", deep: "Deep (torch)" };

const PAGE_HTML = `
<div class="mdl-notice" id="mdl-notice" role="status" aria-live="polite" hidden></div>
<div class="mdl-grid">
  <div class="mdl-col">
    <section class="panel mdl-card" aria-labelledby="mdl-train-h">
      <div class="panel-head"><h2 id="mdl-train-h">Train a model</h2><span class="panel-sub">POST /api/v1/train</span></div>
      <form id="mdl-train" class="mdl-form" autocomplete="off">
        <label>Symbol<select name="symbol" id="mdl-symbol"></select></label>
        <label>Horizon<select name="horizon" id="mdl-horizon"></select></label>
        <label class="wide">Model<select name="model" id="mdl-model"></select></label>
        <label class="wide">After training<select name="promote" id="mdl-promote">
          <option value="if_better">promote if it beats the live model</option>
          <option value="never">keep in the registry only</option>
          <option value="always">promote to live</option>
        </select></label>
        <label class="wide">API key<input type="password" name="key" id="mdl-key" placeholder="the server's API key" autocomplete="off"></label>
        <div class="mdl-form-row wide"><button type="submit" class="mdl-btn primary" id="mdl-train-btn">Train</button><span id="mdl-form-msg" class="mdl-msg" role="alert"></span></div>
      </form>
    </section>
    <section class="panel mdl-card" id="mdl-job" aria-labelledby="mdl-job-h" hidden>
      <div class="panel-head"><h2 id="mdl-job-h">Training</h2><span class="mdl-pill" id="mdl-job-status"></span></div>
      <div class="mdl-job-body">
        <div class="mdl-job-title" id="mdl-job-title"></div>
        <div class="mdl-progress" role="progressbar" aria-valuemin="0" aria-valuemax="100" id="mdl-progress"><span></span></div>
        <div class="mdl-job-line"><span id="mdl-job-pct">0 %</span><span id="mdl-job-stage"></span><span id="mdl-job-eta"></span></div>
        <div id="mdl-loss" class="mdl-loss"></div>
        <div id="mdl-job-error" class="mdl-error" role="alert" hidden></div>
        <dl id="mdl-job-metrics" class="mdl-metrics" hidden></dl>
        <div id="mdl-job-result" class="mdl-result"></div>
      </div>
    </section>
  </div>
  <div class="mdl-col">
    <section class="panel mdl-card" aria-labelledby="mdl-live-h">
      <div class="panel-head"><h2 id="mdl-live-h">Live forecasts</h2><span class="panel-sub">GET /api/v1/predictions · track record of the live model</span></div>
      <div class="mdl-scroll"><table class="mdl-table" id="mdl-live"><thead><tr>
        <th>Symbol</th><th>Model</th><th>Status</th><th class="num">Latest forecast</th><th class="num">MAE</th><th class="num">MASE</th><th class="num">Direction</th><th class="num">Coverage</th><th class="num">Age</th>
      </tr></thead><tbody></tbody></table></div>
    </section>
    <section class="panel mdl-card" aria-labelledby="mdl-reg-h">
      <div class="panel-head"><h2 id="mdl-reg-h">Registry</h2><span class="panel-sub" id="mdl-reg-sub">GET /api/v1/models</span></div>
      <div class="mdl-scroll"><table class="mdl-table" id="mdl-registry"><thead><tr>
        <th>ID</th><th>Symbol</th><th>Horizon</th><th>Model</th><th>Created</th><th class="num" title="walk-forward MAE over the MAE of persistence; below 1 beats it">MASE</th><th class="num">MAE</th><th class="num">Direction</th><th class="num">Coverage</th><th></th>
      </tr></thead><tbody></tbody></table></div>
    </section>
    <section class="panel mdl-card" aria-labelledby="mdl-board-h">
      <div class="panel-head"><h2 id="mdl-board-h">Leaderboard vs persistence</h2><span class="panel-sub">walk-forward MASE, best version per model · 1 = persistence</span></div>
      <div id="mdl-board" class="mdl-board"></div>
    </section>
    <section class="panel mdl-card" aria-labelledby="mdl-jobs-h">
      <div class="panel-head"><h2 id="mdl-jobs-h">Recent jobs</h2><span class="panel-sub">GET /api/v1/train</span></div>
      <table class="mdl-table" id="mdl-jobs"><tbody></tbody></table>
    </section>
  </div>
</div>
<dialog id="mdl-key-dialog" class="mdl-dialog">
  <form method="dialog" id="mdl-key-form">
    <h2>API key</h2>
    <p>Promoting a model changes what serves live forecasts; the server asks for its API key (on a local install, the file api_key in the data folder). It is kept for this browser session only.</p>
    <input type="password" id="mdl-key-input" aria-label="API key" required autocomplete="off">
    <div class="mdl-form-row"><button value="cancel" formnovalidate class="mdl-btn">Cancel</button><button value="ok" class="mdl-btn primary" id="mdl-key-ok">Use key</button></div>
  </form>
</dialog>`;

function loadKey() {
  try {
    return sessionStorage.getItem(KEY_STORE) || "";
  } catch {
    return "";
  }
}

function saveKey(key) {
  try {
    if (key) sessionStorage.setItem(KEY_STORE, key);
    else sessionStorage.removeItem(KEY_STORE);
  } catch {
    /* storage disabled: asked again next time */
  }
}

const cssVar = (name, fallback) => getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
const authFailed = (err) => err && (err.status === 401 || err.status === 403);
const dmCell = (p) => (Number.isFinite(p) ? `<span class="${p < 0.05 ? "up" : p > 0.95 ? "down" : ""}">${num(p, 3)}</span>` : "—");
const signedPct = (x, d = 1) => (Number.isFinite(x) ? `<span class="${x > 0 ? "up" : x < 0 ? "down" : ""}">${x > 0 ? "+" : ""}${(x * 100).toFixed(d)} %</span>` : "—");
const CAL_LEVELS = [50, 80, 90, 95];
const breakEven = (bp) => (!Number.isFinite(bp) ? "—" : bp > 0 ? `${num(bp, 1)} bp` : `<span class="down" title="loses before costs">0 bp</span>`);

/** After-cost results of each model's default strategy (long/short on the forecast's sign, held
 * between signals) next to buy-and-hold, from the walk-forward metrics. */
function costTable(rows) {
  const traded = rows.filter((r) => Number.isFinite(r.metrics.strategy_return));
  if (!traded.length) return "";
  const cost = traded.find((r) => Number.isFinite(r.metrics.cost_bps))?.metrics.cost_bps;
  const body = traded
    .map((r) => {
      const m = r.metrics;
      const vs = m.strategy_return - m.buy_and_hold_return;
      return `<tr class="${r.baseline ? "baseline" : ""}"><td>${esc(r.model)}</td>
        <td class="num">${signedPct(m.strategy_return)}</td><td class="num">${signedPct(m.buy_and_hold_return)}</td>
        <td class="num" title="after-cost return minus buy-and-hold's">${signedPct(vs)}</td>
        <td class="num">${num(m.strategy_sharpe, 2)} <span class="fc-n">/ ${num(m.buy_and_hold_sharpe, 2)}</span></td>
        <td class="num">${signedPct(m.strategy_max_drawdown)} <span class="fc-n">/ ${signedPct(m.buy_and_hold_max_drawdown)}</span></td>
        <td class="num">${num(m.strategy_turnover, 1)}</td>
        <td class="num">${breakEven(m.break_even_bps)}</td></tr>`;
    })
    .join("");
  return `<div class="mdl-scroll"><table class="mdl-table mdl-cost"><caption>After costs${Number.isFinite(cost) ? ` (${num(cost, 0)} bp per trade)` : ""} · long/short on the forecast's sign vs buy-and-hold</caption>
    <thead><tr><th>Model</th><th class="num">Return</th><th class="num">Buy &amp; hold</th><th class="num">vs B&amp;H</th><th class="num" title="annualised, strategy / buy-and-hold">Sharpe</th><th class="num" title="strategy / buy-and-hold">Max DD</th><th class="num" title="sum of traded weight">Turnover</th><th class="num" title="cost per trade (fee + slippage) at which the return is zero; 0 = loses before costs">Break-even</th></tr></thead>
    <tbody>${body}</tbody></table></div>`;
}

/** Nominal vs observed coverage of each model's 50/80/90/95 % bands, and its pinball loss. */
function calibrationTable(rows) {
  const scored = rows.filter((r) => CAL_LEVELS.some((l) => Number.isFinite(r.metrics[`coverage_${l}`])));
  if (!scored.length) return "";
  const cell = (obs, nominal) => {
    if (!Number.isFinite(obs)) return `<td class="num">—</td>`;
    const off = Math.abs(obs * 100 - nominal);
    return `<td class="num ${off > 5 ? "down" : ""}" title="nominal ${nominal} %">${(obs * 100).toFixed(1)} %</td>`;
  };
  const body = scored
    .map((r) => `<tr class="${r.baseline ? "baseline" : ""}"><td>${esc(r.model)}</td>${CAL_LEVELS.map((l) => cell(r.metrics[`coverage_${l}`], l)).join("")}<td class="num">${Number.isFinite(r.metrics.pinball_pct) ? num(r.metrics.pinball_pct, 4) : "—"}</td></tr>`)
    .join("");
  return `<div class="mdl-scroll"><table class="mdl-table mdl-calib"><caption>Calibration · observed coverage of each band (nominal in the header)</caption>
    <thead><tr><th>Model</th>${CAL_LEVELS.map((l) => `<th class="num">${l} %</th>`).join("")}<th class="num" title="mean pinball loss at the bands' quantiles, % of price; lower is better">Pinball %</th></tr></thead>
    <tbody>${body}</tbody></table></div>`;
}

const masePill = (m) => (Number.isFinite(m) ? `<span class="${m < 1 ? "up" : m > 1 ? "down" : ""}">${num(m, 3)}</span>` : "—");

export class ModelsPage {
  /** @param {HTMLElement} root the page container (#page-models) */
  constructor(root) {
    this.root = root;
    this.built = false;
    this.visible = false;
    this.versions = [];
    this.slots = [];
    this.events = new Map(); // job id -> training events by seq (kept while hidden: a job may finish meanwhile)
    this.job = null; // {id, info}
    this.liveTimer = null;
    this.liveAt = 0;
  }

  show() {
    this.visible = true;
    if (!this.built) this.#build();
    if (this.job) this.#renderLoss(); // in the theme of now (it may have changed while hidden)
    this.refresh();
  }

  hide() {
    this.visible = false;
  }

  refreshTheme() {
    if (this.visible && this.job) this.#renderLoss();
  }

  /** Reload the registry and the live forecasts. */
  async refresh() {
    await Promise.all([this.#loadRegistry(), this.#loadLive(), this.#loadJobs()]);
  }

  /** The /health "models" block: the live slots. */
  onHealth(health) {
    const block = health && health.models;
    this.slots = block && Array.isArray(block.models) ? block.models : [];
    if (this.visible) this.#loadLive();
  }

  /** A "training" WebSocket message. */
  onTraining(msg) {
    if (!msg || !msg.job_id) return;
    this.#addEvents(msg.job_id, [msg]);
    if (this.job && msg.job_id === this.job.id) {
      this.#renderJob();
      if (msg.event === "done") this.#loadRegistry();
    }
    if (this.visible && (msg.event === "done" || msg.seq === 1)) this.#loadJobs();
  }

  /** A "prediction" WebSocket message: the live table follows, at most every few seconds. */
  onPrediction() {
    if (!this.visible || this.liveTimer !== null) return;
    this.liveTimer = setTimeout(() => {
      this.liveTimer = null;
      this.#loadLive();
    }, Math.max(0, this.liveAt + LIVE_EVERY_MS - Date.now()));
  }

  // ------------------------------------------------------------------------------------------ build

  #$(id) {
    return this.root.querySelector(`#${id}`);
  }

  async #loadFamilies() {
    const model = this.#$("mdl-model");
    const { families } = await requestJSON("GET", "/api/v1/model-families");
    for (const { family, models } of families) {
      const g = document.createElement("optgroup");
      g.label = FAMILY_LABELS[family] || family;
      for (const m of models) {
        const opt = new Option(m.name, m.name);
        opt.title = m.description;
        g.append(opt);
      }
      model.append(g);
    }
    model.value = "lightgbm";
  }

  #build() {
    this.built = true;
    this.root.innerHTML = PAGE_HTML;
    this.#loadFamilies();
    this.#$("mdl-key").value = loadKey();
    this.#$("mdl-train").addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.#train();
    });
    this.#$("mdl-jobs").tBodies[0].addEventListener("click", (ev) => {
      const tr = ev.target.closest("tr[data-job]");
      if (tr) this.#openJob(tr.dataset.job);
    });
    this.#$("mdl-registry").tBodies[0].addEventListener("click", (ev) => {
      const b = ev.target.closest("button[data-promote]");
      if (b) this.#promote(b.dataset.promote);
    });
    this.#loadMeta();
  }

  async #loadMeta() {
    try {
      const meta = await requestJSON("GET", "/api/v1/symbols");
      const sym = this.#$("mdl-symbol");
      sym.replaceChildren(...(meta.symbols || []).map((s) => new Option(s, s)));
      const hz = this.#$("mdl-horizon");
      hz.replaceChildren(...(meta.intervals || []).map((i) => new Option(i, i)));
      if ((meta.intervals || []).includes("1h")) hz.value = "1h";
    } catch (err) {
      this.#notice(`Could not load the symbols: ${err.message}`, true);
    }
  }

  #notice(text, bad = false) {
    const el = this.#$("mdl-notice");
    el.textContent = text || "";
    el.hidden = !text;
    el.classList.toggle("bad", bad);
  }

  // ------------------------------------------------------------------------------------- registry

  async #loadRegistry() {
    try {
      const body = await requestJSON("GET", "/api/v1/models");
      this.versions = body.models || [];
      this.#renderRegistry();
      this.#renderBoard();
    } catch (err) {
      this.#$("mdl-reg-sub").textContent = `could not load: ${err.message}`;
    }
  }

  #renderRegistry() {
    const rows = [...this.versions].sort((a, b) => b.created_ms - a.created_ms);
    this.#$("mdl-reg-sub").textContent = `${rows.length} version${rows.length === 1 ? "" : "s"} · ${rows.filter((v) => v.live).length} live`;
    const tbody = this.#$("mdl-registry").tBodies[0];
    if (!rows.length) {
      tbody.innerHTML = `<tr><td colspan="10" class="mdl-empty">No trained models yet: train one with the form above.</td></tr>`;
      return;
    }
    tbody.innerHTML = rows
      .map((v) => {
        const m = v.metrics || {};
        const badge = v.live ? `<span class="mdl-badge live">live</span>` : v.expired ? `<span class="mdl-badge off">expired</span>` : "";
        const action = v.live
          ? ""
          : `<button type="button" class="mdl-btn small" data-promote="${esc(v.id)}" ${v.expired ? "disabled title=\"expired\"" : ""}>Promote</button>`;
        return `<tr data-id="${esc(v.id)}" class="${v.live ? "is-live" : ""}">
          <td class="mono" title="${esc(v.id)}">${esc(v.id.length > 22 ? `${v.id.slice(0, 21)}…` : v.id)} ${badge}</td>
          <td>${esc(v.symbol)}</td><td>${esc(v.horizon)}</td><td>${esc(v.model)}</td>
          <td title="${esc(formatCandleTime(v.created_ms, "1m"))}">${formatDuration(v.age_s)} ago</td>
          <td class="num">${masePill(m.mase)}</td>
          <td class="num">${Number.isFinite(m.mae) ? formatPrice(m.mae, priceDigits(m.mae)) : "—"}</td>
          <td class="num">${pct(m.directional_accuracy)}</td>
          <td class="num">${pct(m.interval_coverage)} <span class="fc-n">/ ${pct(m.interval_nominal ?? v.level, 0)}</span></td>
          <td class="num">${action}</td></tr>`;
      })
      .join("");
  }

  #renderBoard() {
    const groups = new Map();
    for (const v of this.versions) {
      const m = v.metrics || {};
      if (!Number.isFinite(m.mase)) continue;
      const key = `${v.symbol} ${v.horizon}`;
      const g = groups.get(key) || new Map();
      const best = g.get(v.model);
      if (!best || m.mase < best.metrics.mase) g.set(v.model, v);
      groups.set(key, g);
    }
    const el = this.#$("mdl-board");
    if (!groups.size) {
      el.innerHTML = `<p class="mdl-empty">No evaluated models yet. Each training run scores its model walk-forward against persistence; the ranking appears here.</p>`;
      return;
    }
    el.innerHTML = [...groups.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([key, g]) => {
        const rows = [...g.values()].sort((a, b) => a.metrics.mase - b.metrics.mase);
        if (!g.has("persistence")) rows.push({ model: "persistence", baseline: true, metrics: { mase: 1 } });
        rows.sort((a, b) => a.metrics.mase - b.metrics.mase);
        const top = Math.max(1.25, ...rows.map((r) => r.metrics.mase));
        const body = rows
          .map((r, i) => {
            const m = r.metrics;
            const gain = (1 - m.mase) * 100;
            const w = Math.min(100, (m.mase / top) * 100);
            const base = r.baseline || r.model === "persistence";
            const note = base ? "baseline" : `${gain >= 0 ? "beats" : "trails"} persistence by ${Math.abs(gain).toFixed(1)} %`;
            return `<tr class="${base ? "baseline" : ""}${r.live ? " is-live" : ""}">
              <td class="rank">${i + 1}</td><td>${esc(r.model)}${r.live ? ' <span class="mdl-badge live">live</span>' : ""}</td>
              <td class="bar-cell"><span class="bar ${m.mase < 1 ? "good" : m.mase > 1 ? "bad" : "base"}" style="width:${w.toFixed(1)}%"></span><span class="one" style="left:${((1 / top) * 100).toFixed(1)}%"></span></td>
              <td class="num">${num(m.mase, 3)}</td><td class="num">${pct(m.directional_accuracy)}</td>
              <td class="num" title="one-sided Diebold-Mariano p-value: lower absolute error than persistence (backs MASE)">${dmCell(m.dm_pvalue_mae)}</td>
              <td class="num" title="one-sided Diebold-Mariano p-value: lower squared error than persistence (backs RMSE)">${dmCell(m.dm_pvalue_mse)}</td>
              <td class="note ${base ? "" : gain >= 0 ? "up" : "down"}">${note}</td></tr>`;
          })
          .join("");
        return `<div class="mdl-board-group"><h3>${esc(key)}</h3>
          <table class="mdl-table"><thead><tr><th>#</th><th>Model</th><th>MASE</th><th class="num"></th><th class="num">Direction</th><th class="num" title="p &lt; 0.05: significantly better than persistence in absolute error">DM p MAE</th><th class="num" title="p &lt; 0.05: significantly better than persistence in squared error">DM p MSE</th><th></th></tr></thead><tbody>${body}</tbody></table>
          ${costTable(rows)}${calibrationTable(rows)}</div>`;
      })
      .join("");
  }

  async #promote(id) {
    const v = this.versions.find((x) => x.id === id);
    const mase = v && v.metrics ? v.metrics.mase : NaN;
    if (Number.isFinite(mase) && mase >= 1) {
      const n = v.metrics.n ?? v.metrics.n_test;
      const sure = window.confirm(`${v.model} ${v.horizon} trails persistence: its walk-forward MASE is ${mase.toFixed(3)}`
        + `${Number.isFinite(n) ? ` over ${n} test forecasts` : ""}, so "no change" forecast as well or better. Promote it to live anyway?`);
      if (!sure) {
        this.#notice(`Not promoted: ${v.id} stays in the registry.`);
        return;
      }
    }
    let key = loadKey() || this.#$("mdl-key").value.trim();
    if (!key) key = await this.#askKey();
    if (!key) return;
    try {
      const v = await requestJSON("POST", `/api/v1/models/${encodeURIComponent(id)}/promote`, { key });
      saveKey(key);
      this.#notice(`Promoted ${v.id} (${modelLabel(v.model, v.horizon, v.level)}) to live for ${v.symbol}; the stream picks it up within seconds.`);
    } catch (err) {
      if (authFailed(err)) saveKey("");
      this.#notice(`Promotion refused (${err.status}${err.code ? ` ${err.code}` : ""}): ${err.message}${authFailed(err) ? ". The key was forgotten; promote again to enter it." : ""}`, true);
    }
    await this.refresh();
  }

  /** Ask for the API key in a modal; resolves with it, or "" when cancelled. */
  #askKey() {
    const dialog = this.#$("mdl-key-dialog");
    const input = this.#$("mdl-key-input");
    input.value = "";
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok" ? input.value.trim() : ""), { once: true });
      dialog.showModal();
    });
  }

  // ------------------------------------------------------------------------------------- training

  async #train() {
    const f = this.#$("mdl-train");
    const msg = this.#$("mdl-form-msg");
    const key = f.key.value.trim();
    const body = { symbol: f.symbol.value, horizon: f.horizon.value, model: f.model.value, promote: f.promote.value };
    const btn = this.#$("mdl-train-btn");
    btn.disabled = true;
    msg.textContent = "Starting…";
    msg.classList.remove("bad");
    try {
      const job = await requestJSON("POST", "/api/v1/train", { body, key });
      if (key) saveKey(key);
      msg.textContent = `Started ${job.job_id}`;
      this.job = { id: job.job_id, info: job };
      this.#renderJob();
      // Events sent before the POST returned (or while the socket was down) come from the job itself.
      await this.#openJob(job.job_id);
    } catch (err) {
      if (authFailed(err)) saveKey("");
      msg.textContent = `${authFailed(err) ? "API key refused" : "Could not start training"} (${err.status || "network"}): ${err.message}`;
      msg.classList.add("bad");
    } finally {
      btn.disabled = false;
    }
  }

  /** Show a job in the Training card: its status and every event so far (later ones come live). */
  async #openJob(id) {
    const full = await requestJSON("GET", `/api/v1/train/${encodeURIComponent(id)}`);
    this.job = { id, info: full };
    this.#addEvents(id, full.events || []);
    this.#renderJob();
    this.#loadJobs();
  }

  async #loadJobs() {
    let jobs;
    try {
      jobs = (await requestJSON("GET", "/api/v1/train")).jobs || [];
    } catch {
      return; // the next refresh tries again
    }
    const tbody = this.#$("mdl-jobs").tBodies[0];
    if (!jobs.length) {
      tbody.innerHTML = `<tr><td class="mdl-empty">No training jobs since the server started.</td></tr>`;
      return;
    }
    tbody.innerHTML = jobs
      .slice(0, 8)
      .map((j) => `<tr data-job="${esc(j.job_id)}" class="mdl-job-row${this.job && this.job.id === j.job_id ? " current" : ""}" title="Show this job">
        <td class="mono">${esc(j.job_id)}</td><td>${esc(j.symbol)} ${esc(j.horizon)} · ${esc(j.model)}</td>
        <td><span class="mdl-pill ${esc(j.status)}">${esc(j.status)}</span></td><td class="num">${Number(j.progress || 0).toFixed(0)} %</td></tr>`)
      .join("");
    // A job started elsewhere (CLI, another tab) while nothing is shown here: follow it.
    const running = jobs.find((j) => j.status === "running" || j.status === "queued");
    if (!this.job && running) this.#openJob(running.job_id);
  }

  #addEvents(jobId, list) {
    let byseq = this.events.get(jobId);
    if (!byseq) {
      byseq = new Map();
      this.events.set(jobId, byseq);
      if (this.events.size > 50) this.events.delete(this.events.keys().next().value);
    }
    for (const e of list) byseq.set(e.seq, e);
  }

  #jobEvents() {
    const byseq = this.events.get(this.job.id);
    return byseq ? [...byseq.values()].sort((a, b) => a.seq - b.seq) : [];
  }

  #renderJob() {
    const { id, info } = this.job;
    const events = this.#jobEvents();
    const done = events.find((e) => e.event === "done");
    const error = events.find((e) => e.event === "error");
    const metrics = events.find((e) => e.event === "metrics");
    const epochs = events.filter((e) => e.event === "epoch");
    const last = epochs[epochs.length - 1];
    const status = done ? done.status : epochs.length ? "running" : info.status || "queued";
    this.#$("mdl-job").hidden = false;
    this.#$("mdl-job").dataset.status = status;
    this.#$("mdl-job-title").innerHTML = `<span class="mono">${esc(id)}</span> · ${esc(info.symbol)} ${esc(info.horizon)} · ${esc(info.model)}`;
    const pill = this.#$("mdl-job-status");
    pill.textContent = status;
    pill.className = `mdl-pill ${status}`;
    const progress = done && done.status === "succeeded" ? 100 : last ? last.progress : 0;
    const bar = this.#$("mdl-progress");
    bar.setAttribute("aria-valuenow", String(progress));
    bar.firstElementChild.style.width = `${progress}%`;
    this.#$("mdl-job-pct").textContent = `${progress.toFixed(0)} %`;
    this.#$("mdl-job-stage").textContent = last ? `epoch ${last.epoch} · ${last.stage}` : "";
    this.#$("mdl-job-eta").textContent = done ? "" : last && Number.isFinite(last.eta_s) ? `ETA ${last.eta_s < 60 ? `${last.eta_s.toFixed(1)} s` : formatDuration(last.eta_s)}` : "";
    const errEl = this.#$("mdl-job-error");
    errEl.hidden = !error;
    if (error) errEl.textContent = `${error.error}: ${error.detail}`;
    const mEl = this.#$("mdl-job-metrics");
    mEl.hidden = !metrics;
    if (metrics) mEl.innerHTML = this.#metricsHtml(metrics.metrics || {});
    const res = this.#$("mdl-job-result");
    if (done && done.status === "succeeded") {
      const d = done.decision;
      const why = d ? ` · ${esc(d.reason || (d.promote ? "beats the live model" : "does not beat the live model"))}` : "";
      res.innerHTML = `Registered <span class="mono">${esc(done.model_id)}</span> · ${done.promoted ? '<span class="mdl-badge live">promoted to live</span>' : "not promoted"}${why}`;
    } else {
      res.textContent = "";
    }
    this.#renderLoss(epochs);
  }

  #metricsHtml(m) {
    const items = [
      ["MASE", masePill(m.mase), "walk-forward MAE over persistence's; below 1 beats it"],
      ["MAE", Number.isFinite(m.mae) ? formatPrice(m.mae, priceDigits(m.mae)) : "—", "mean absolute error of the price"],
      ["RMSE", Number.isFinite(m.rmse) ? formatPrice(m.rmse, priceDigits(m.rmse)) : "—", ""],
      ["MAPE", Number.isFinite(m.mape) ? `${m.mape.toFixed(3)} %` : "—", ""],
      ["Direction", `${pct(m.directional_accuracy)}${Number.isFinite(m.da_ci_low) ? ` <span class="fc-n">CI ${(m.da_ci_low * 100).toFixed(0)}–${pct(m.da_ci_high, 0)}</span>` : ""}`, "direction hit rate, 95 % Wilson interval"],
      ["Coverage", `${pct(m.interval_coverage)} <span class="fc-n">vs ${pct(m.interval_nominal, 0)}</span>`, "share of outcomes inside the interval"],
      ["DM p MAE", dmCell(m.dm_pvalue_mae), "one-sided Diebold-Mariano test: lower absolute error than persistence"],
      ["DM p MSE", dmCell(m.dm_pvalue_mse), "one-sided Diebold-Mariano test: lower squared error than persistence"],
      ["After costs", `${signedPct(m.strategy_return)} <span class="fc-n">B&amp;H ${signedPct(m.buy_and_hold_return)}</span>`, "total return of long/short on the forecast's sign, after fees and slippage, vs buy-and-hold"],
      ["Break-even", breakEven(m.break_even_bps), "cost per trade at which the strategy's return is zero"],
      ["Pinball", Number.isFinite(m.pinball_pct) ? `${num(m.pinball_pct, 4)} %` : "—", "mean pinball loss at the 50/80/90/95 % bands' quantiles, % of price"],
      ["n", `${formatInt(m.n)}${m.windows ? ` <span class="fc-n">${m.windows} window${m.windows === 1 ? "" : "s"}</span>` : ""}`, "scored walk-forward forecasts"],
    ];
    return items.map(([k, v, t]) => `<div title="${esc(t)}"><dt>${k}</dt><dd>${v}</dd></div>`).join("");
  }

  #renderLoss(epochs = this.job ? this.#jobEvents().filter((e) => e.event === "epoch") : []) {
    const el = this.#$("mdl-loss");
    if (!window.Plotly || !el) return;
    const text = cssVar("--text-dim", "#8b98a5");
    const grid = cssVar("--chart-grid", "rgba(128,128,128,0.15)");
    const panel = cssVar("--panel", "#10161d");
    const x = epochs.map((e) => e.epoch);
    const line = (name, key, color, dash) => ({
      type: "scatter", mode: "lines+markers", name, x, y: epochs.map((e) => e[key]),
      line: { color, width: 2, dash }, marker: { size: 5, color }, connectgaps: false,
      hovertemplate: `${name} %{y:.4f}<extra>epoch %{x}</extra>`,
    });
    const traces = [line("loss", "loss", cssVar("--accent", "#4c8dff"), "solid"), line("val loss", "val_loss", cssVar("--forecast", "#ab7df8"), "dot")];
    const axis = { gridcolor: grid, linecolor: grid, zeroline: false, tickfont: { color: text, size: 10 } };
    const layout = {
      paper_bgcolor: panel, plot_bgcolor: panel, font: { color: text, size: 11 },
      margin: { l: 40, r: 10, t: 26, b: 34 }, showlegend: true,
      legend: { orientation: "h", x: 0, y: 1, yanchor: "bottom", font: { color: text, size: 11 } },
      xaxis: { ...axis, title: { text: "epoch", font: { size: 10, color: text } }, dtick: 1 },
      yaxis: { ...axis, rangemode: "tozero" },
    };
    window.Plotly.react(el, traces, layout, { displayModeBar: false, responsive: true });
  }

  // ----------------------------------------------------------------------------------------- live

  async #loadLive() {
    this.liveAt = Date.now();
    const slots = this.slots;
    const tbody = this.#$("mdl-live").tBodies[0];
    if (!slots.length) {
      tbody.innerHTML = `<tr><td colspan="9" class="mdl-empty">No model is live. Promote one from the registry below.</td></tr>`;
      return;
    }
    const bodies = await Promise.all(
      slots.map((s) =>
        requestJSON("GET", `/api/v1/predictions/${encodeURIComponent(s.symbol)}?${new URLSearchParams({ horizon: s.horizon, limit: "1" })}`).catch((err) => ({ error: err.message })),
      ),
    );
    if (slots !== this.slots) return;
    tbody.innerHTML = slots
      .map((s, i) => {
        const b = bodies[i];
        const p = b.latest;
        const rec = (b.track_record && b.track_record.model) || {};
        const d = p ? priceDigits(p.predicted_price) : 2;
        const [mae, mase, dir, cov] = rec.n ? trackItems(rec, d).map(([, v]) => v) : ["—", "—", "—", "—"];
        const reason = b.error || s.reason || "";
        const latest = p ? `${formatPrice(p.predicted_price, d)} <span class="fc-n">[${formatPrice(p.lower, d)} – ${formatPrice(p.upper, d)}]</span>` : "—";
        return `<tr data-slot="${esc(`${s.symbol}/${s.horizon}`)}"><td><a href="#${esc(s.symbol)}/${esc(s.horizon)}">${esc(s.symbol)}</a></td>
          <td title="${esc(s.model_id)}">${esc(modelLabel(s.model, s.horizon, p ? p.level : undefined))}</td>
          <td><span class="mdl-badge ${s.status === "serving" ? "live" : s.status === "waiting" ? "" : "off"}">${esc(s.status)}</span>${reason ? ` <span class="fc-n" title="${esc(reason)}">${esc(reason.length > 48 ? `${reason.slice(0, 47)}…` : reason)}</span>` : ""}</td>
          <td class="num">${latest}</td><td class="num">${mae}</td><td class="num">${mase}</td><td class="num">${dir}</td><td class="num">${cov}</td>
          <td class="num">${formatDuration(s.age_s)}</td></tr>`;
      })
      .join("");
  }
}
