// The live model's forecast on the Market page: which model is live for the shown symbol (from the
// /health "models" block), its newest forecast and live track record (GET /api/v1/predictions),
// kept current by the "prediction" WebSocket messages. It draws a strip under the chart and hands
// the chart a cone: from the origin candle's close to the forecast and its interval at the target.

import { MIN_N, toneIf, tooFew, wilson } from "./honest.js";
import { requestJSON } from "./api.js";
import { formatDuration, formatInt, formatPrice, priceDigits } from "./format.js";
import { intervalMs } from "./chart.js";

// After a live forecast arrives the track record changes when older forecasts get scored; asking
// for it again at most this often keeps a 1 s stream from turning into a request per second.
const TRACK_EVERY_MS = 4000;

export { requestJSON };

export const pct = (x, digits = 1) => (Number.isFinite(x) ? `${(x * 100).toFixed(digits)} %` : "—");
export const num = (x, digits = 2) => (Number.isFinite(x) ? x.toFixed(digits) : "—");

export function esc(text) {
  return String(text ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

/** "lightgbm 1h · 90 %" */
export function modelLabel(model, horizon, level) {
  const lv = Number.isFinite(level) ? ` · ${Math.round(level * 100)} %` : "";
  return `${model} ${horizon}${lv}`;
}

/** The live track record as "<dt>/<dd>" items: MAE, MASE, direction hit rate (n), coverage vs nominal. */
export function trackItems(rec, digits = 2) {
  if (!rec || !rec.n) return [["Track record", "no scored forecasts yet"]];
  const mase = Number.isFinite(rec.mase) ? rec.mase : NaN;
  const n = rec.n;
  const [lo, hi] = wilson(rec.direction_hit_rate, n);
  const ci = Number.isFinite(lo) ? ` CI ${(lo * 100).toFixed(0)}–${(hi * 100).toFixed(0)} %` : "";
  const few = tooFew(n) ? `<span class="fc-n" title="fewer than ${MIN_N} scored forecasts: too few to judge the model">· ${formatInt(n)} scored, too few to judge</span>` : "";
  return [
    ["MAE", `${formatPrice(rec.mae, digits)} <span class="fc-n">n=${formatInt(n)}</span>`],
    ["MASE", `<span class="${toneIf(n, mase < 1 ? "up" : mase > 1 ? "down" : "")}" title="MAE over the MAE of no change; below 1 beats persistence (n=${n})">${num(mase, 3)}</span>`],
    ["Direction", `${pct(rec.direction_hit_rate)} <span class="fc-n" title="95 % Wilson interval">${ci} n=${formatInt(n)}</span>`],
    ["Coverage", `${pct(rec.interval_coverage)} <span class="fc-n">vs ${pct(rec.level, 0)} n=${formatInt(n)}</span>${few}`],
  ];
}

/** The live slot to show for a symbol: the chart's interval as horizon if live, else the shortest horizon. */
export function pickSlot(slots, symbol, interval) {
  const mine = (slots || []).filter((s) => s.symbol === symbol);
  if (!mine.length) return null;
  const exact = mine.find((s) => s.horizon === interval);
  if (exact) return exact;
  return [...mine].sort((a, b) => (intervalMs(a.horizon) || 0) - (intervalMs(b.horizon) || 0))[0];
}

export class ForecastStrip {
  /**
   * @param {HTMLElement} el the strip under the chart
   * @param {{setForecast: (fc: object|null) => void}} chart
   */
  constructor(el, chart) {
    this.el = el;
    this.chart = chart;
    this.symbol = "";
    this.interval = "";
    this.slots = null; // null: /health not read yet
    this.slot = null;
    this.body = null; // the last /api/v1/predictions answer for the slot
    this.latest = null;
    this.seq = 0;
    this.trackTimer = null;
    this.lastTrackAt = 0;
  }

  /** The chart switched to symbol/interval. */
  setView(symbol, interval) {
    if (symbol === this.symbol && interval === this.interval) return;
    this.symbol = symbol;
    this.interval = interval;
    this.#choose(true);
  }

  /** A fresh /health answer: its "models" block names the live slots and why one does not serve. */
  onHealth(health) {
    const block = health && health.models;
    this.slots = block && Array.isArray(block.models) ? block.models : [];
    this.#choose(false);
  }

  /** A "prediction" WebSocket message (a LivePrediction). */
  onPrediction(p) {
    if (!p || p.symbol !== this.symbol) return;
    const slot = this.slot;
    if (!slot || p.horizon !== slot.horizon) {
      // A model went live since the last /health: show it without waiting for the next poll.
      if (!slot && (this.slots || []).every((s) => s.symbol !== p.symbol || s.horizon !== p.horizon)) {
        this.slots = [...(this.slots || []), { symbol: p.symbol, horizon: p.horizon, model_id: p.model_id, model: p.model, status: "serving" }];
        this.#choose(true);
      }
      return;
    }
    if (p.model_id !== slot.model_id) {
      slot.model_id = p.model_id; // promoted while we watched (hot reload)
      slot.model = p.model;
      this.#fetch();
    }
    if (!this.latest || p.origin_ms >= this.latest.origin_ms) {
      this.latest = p;
      this.#draw();
    }
    this.#scheduleTrack();
  }

  #choose(viewChanged) {
    const slot = this.slots === null ? null : pickSlot(this.slots, this.symbol, this.interval);
    const before = this.slot;
    this.slot = slot;
    const same = before && slot && before.horizon === slot.horizon && before.model_id === slot.model_id && !viewChanged;
    if (!same) {
      this.latest = null;
      this.body = null;
      if (slot) this.#fetch();
    }
    this.#draw();
  }

  #scheduleTrack() {
    if (this.trackTimer !== null) return;
    const wait = Math.max(0, this.lastTrackAt + TRACK_EVERY_MS - Date.now());
    this.trackTimer = setTimeout(() => {
      this.trackTimer = null;
      this.#fetch();
    }, wait);
  }

  async #fetch() {
    const slot = this.slot;
    if (!slot) return;
    const seq = ++this.seq;
    this.lastTrackAt = Date.now();
    try {
      const q = new URLSearchParams({ horizon: slot.horizon, limit: "1" });
      const body = await requestJSON("GET", `/api/v1/predictions/${encodeURIComponent(slot.symbol)}?${q}`);
      if (seq !== this.seq || slot !== this.slot) return;
      this.body = body;
      if (body.latest && (!this.latest || body.latest.origin_ms >= this.latest.origin_ms)) this.latest = body.latest;
      if (!body.serving) this.latest = null;
      this.#draw();
    } catch (err) {
      if (seq !== this.seq) return;
      this.body = { error: err.message };
      this.#draw();
    }
  }

  /** Whether the slot serves forecasts now (an expired or broken model draws nothing). */
  #serving() {
    const s = this.slot;
    if (!s || s.status === "expired" || s.status === "error") return false;
    return !(this.body && this.body.serving === false);
  }

  #draw() {
    const s = this.slot;
    const p = this.#serving() && this.latest && this.latest.model_id === s.model_id ? this.latest : null;
    this.chart.setForecast(p ? this.#cone(p) : null);
    this.el.dataset.state = !s ? "none" : p ? "live" : this.#serving() ? "waiting" : "off";
    if (this.slots === null) {
      this.el.innerHTML = `<span class="fc-tag">Forecast</span><span class="fc-note">checking for a live model…</span>`;
      return;
    }
    if (!s) {
      this.el.innerHTML =
        `<span class="fc-tag">Forecast</span><span class="fc-note">No model is live for ${esc(this.symbol)}. ` +
        `Train and promote one on the <a href="#/models">Models</a> page.</span>`;
      return;
    }
    const body = this.body || {};
    const level = p ? p.level : body.model && body.model.level;
    const parts = [`<span class="fc-tag">Forecast</span>`, `<span class="fc-model" title="${esc(s.model_id)}">${esc(modelLabel(s.model, s.horizon, p ? p.level : level))}</span>`];
    if (p) {
      const d = priceDigits(p.predicted_price);
      const move = p.predicted_price / p.origin_price - 1;
      parts.push(
        `<span class="fc-value">→ <b class="${move >= 0 ? "up" : "down"}">${formatPrice(p.predicted_price, d)}</b> ` +
          `<span class="fc-band">[${formatPrice(p.lower, d)} – ${formatPrice(p.upper, d)}]</span> ` +
          `<span class="fc-n">at ${esc(new Date(p.target_ms + intervalMs(p.interval)).toISOString().slice(11, 19))} UTC</span></span>`,
      );
      if (Number.isFinite(p.prob_up)) parts.push(`<span class="fc-kv">P(up) <b>${pct(p.prob_up, 0)}</b></span>`);
    } else if (!this.#serving()) {
      const reason = (body.reason || s.reason || "").toString();
      parts.push(`<span class="fc-warn">${s.status === "expired" ? "expired: " : "not serving: "}${esc(reason.replace(/^expired:?\s*/i, "") || s.status)}</span>`);
    } else if (body.error) {
      parts.push(`<span class="fc-warn">could not load forecasts: ${esc(body.error)}</span>`);
    } else {
      parts.push(`<span class="fc-note">${esc(s.reason || "waiting for the next forecast…")}</span>`);
    }
    const rec = body.track_record && body.track_record.model;
    const digits = p ? priceDigits(p.predicted_price) : 2;
    parts.push(`<dl class="fc-track">${trackItems(rec, digits).map(([k, v]) => `<div><dt>${k}</dt><dd>${v}</dd></div>`).join("")}</dl>`);
    const age = body.model && Number.isFinite(body.model.age_s) ? body.model.age_s : s.age_s;
    if (Number.isFinite(age)) parts.push(`<span class="fc-n fc-age">model age ${formatDuration(age)}</span>`);
    this.el.innerHTML = parts.join("");
  }

  /** The chart's cone, in the chart's own time axis (x is a candle's open time). */
  #cone(p) {
    const modelIv = intervalMs(p.interval) || 0;
    const chartIv = intervalMs(this.interval) || modelIv;
    // A price "at the close of the model's bar opened at t" sits on the chart's candle closing then.
    const shift = modelIv - chartIv;
    return {
      x0: p.origin_ms + shift, y0: p.origin_price, x1: p.target_ms + shift,
      y: p.predicted_price, lower: p.lower, upper: p.upper,
      label: modelLabel(p.model, p.horizon, p.level),
    };
  }
}
