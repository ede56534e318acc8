// The live candlestick chart: price candles, a volume subplot and optional EMA / Bollinger overlays,
// drawn with plotly.js (window.Plotly, loaded from /static/vendor/plotly.min.js).
//
// Live updates change the series in place: a candle with the last open time replaces the last
// point, a newer one is appended (and the oldest dropped past MAX_POINTS). The chart is then
// re-rendered with Plotly.react and a new datarevision, which diffs against the existing plot
// instead of rebuilding it, at most once per animation frame however many messages arrive.

import { bollinger, ema } from "./indicators.js";
import { formatPrice, priceDigits } from "./format.js";

const MAX_POINTS = 1000;
// With fewer candles than this (a freshly started feed), the time axis still spans this many
// intervals, so that a handful of candles look like candles and not like wide blocks.
const MIN_SPAN = 60;
const UNIT_MS = { s: 1000, m: 60000, h: 3600000, d: 86400000, w: 604800000 };

/** "5m" -> 300000; null for anything else. */
export function intervalMs(interval) {
  const m = /^(\d+)([smhdw])$/.exec(interval || "");
  return m ? Number(m[1]) * UNIT_MS[m[2]] : null;
}
const EMA_PERIOD = 20;
const BB_PERIOD = 20;
const BB_MULT = 2;

/** Trace indices; fixed so that Plotly.react can match traces between renders. */
export const TRACE = Object.freeze({
  candles: 0, volume: 1, bbUpper: 2, bbLower: 3, bbMiddle: 4, ema: 5, spacer: 6, fcLower: 7, fcUpper: 8, fcLine: 9,
});

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

function withAlpha(hex, alpha) {
  const m = /^#([0-9a-f]{6})$/i.exec(hex);
  if (!m) return hex;
  const v = parseInt(m[1], 16);
  return `rgba(${(v >> 16) & 255}, ${(v >> 8) & 255}, ${v & 255}, ${alpha})`;
}

function emptySeries() {
  return { x: [], open: [], high: [], low: [], close: [], volume: [], closed: [], volColor: [] };
}

export class CandleChart {
  /**
   * @param {HTMLElement} el the chart container
   * @param {{onHover?: (index: number|null) => void}} options
   */
  constructor(el, { onHover } = {}) {
    this.el = el;
    this.onHover = onHover || (() => {});
    this.symbol = "";
    this.interval = "";
    this.s = emptySeries();
    this.overlays = { ema: false, bb: false };
    this.revision = 0;
    this.frame = 0;
    this.plotted = false;
    this.colors = this.#readColors();
    this.ind = { ema: [], bb: { middle: [], upper: [], lower: [] } };
    this.forecast = null;
    // Follow the container's size (window resizes and layout changes alike).
    new ResizeObserver(() => {
      if (this.plotted && window.Plotly) window.Plotly.Plots.resize(this.el).catch(() => {});
    }).observe(el);
  }

  get length() {
    return this.s.x.length;
  }

  /** The candle at index i (negative counts from the end) as a plain object, or null. */
  candleAt(i) {
    const n = this.s.x.length;
    const k = i < 0 ? n + i : i;
    if (k < 0 || k >= n) return null;
    const s = this.s;
    return {
      open_time: s.x[k], open: s.open[k], high: s.high[k], low: s.low[k], close: s.close[k],
      volume: s.volume[k], closed: s.closed[k],
      ema: this.overlays.ema ? this.ind.ema[k] : null,
      bbUpper: this.overlays.bb ? this.ind.bb.upper[k] : null,
      bbLower: this.overlays.bb ? this.ind.bb.lower[k] : null,
    };
  }

  /** Replace everything with a fresh history (oldest first), e.g. after switching symbol. */
  load(symbol, interval, candles) {
    this.symbol = symbol;
    this.interval = interval;
    this.s = emptySeries();
    const sorted = [...candles].sort((a, b) => a.open_time - b.open_time);
    for (const c of sorted.slice(-MAX_POINTS)) this.#push(c);
    this.#recompute();
    this.schedule();
  }

  /**
   * Apply one live candle: replace the candle with the same open time or append a newer one.
   * @returns {boolean} whether the chart changed
   */
  apply(c) {
    const s = this.s;
    const n = s.x.length;
    const t = Number(c.open_time);
    if (n === 0 || t > s.x[n - 1]) {
      this.#push(c);
      if (s.x.length > MAX_POINTS) for (const key of Object.keys(s)) s[key].shift();
    } else {
      let k = n - 1;
      while (k >= 0 && s.x[k] > t) k -= 1;
      if (k < 0) return false; // older than everything shown
      if (s.x[k] === t) this.#set(k, c);
      else this.#insert(k + 1, c); // fills a hole, e.g. a candle that closed while history loaded
    }
    this.#recompute();
    this.schedule();
    return true;
  }

  /**
   * Open time of the first missing candle (a jump of more than one interval), or null.
   * @returns {number|null}
   */
  firstHole() {
    const ivMs = this.#ivMs();
    const x = this.s.x;
    if (!ivMs) return null;
    for (let i = 1; i < x.length; i++) if (x[i] - x[i - 1] > ivMs) return x[i - 1] + ivMs;
    return null;
  }

  setOverlays(overlays) {
    this.overlays = { ...this.overlays, ...overlays };
    this.#recompute();
    this.schedule();
  }

  /**
   * The live model's forecast as a cone from the origin close to the interval at the target, or null.
   * @param {{x0: number, y0: number, x1: number, y: number, lower: number, upper: number, label: string}|null} fc
   */
  setForecast(fc) {
    const a = this.forecast;
    const same = a && fc && ["x0", "y0", "x1", "y", "lower", "upper", "label"].every((k) => a[k] === fc[k]);
    if (same || (!a && !fc)) return;
    this.forecast = fc;
    this.schedule();
  }

  /** Re-read the theme colours from CSS and redraw. */
  refreshTheme() {
    this.colors = this.#readColors();
    this.s.volColor = this.s.close.map((c, i) => this.#volColor(this.s.open[i], c));
    this.schedule();
  }

  /** Render on the next animation frame; several calls in one frame render once. */
  schedule() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.render();
    });
  }

  render() {
    if (!window.Plotly) return;
    this.revision += 1;
    const first = !this.plotted;
    const p = window.Plotly.react(this.el, this.#traces(), this.#layout(), this.#config());
    if (first) {
      this.plotted = true;
      Promise.resolve(p).then(() => {
        this.el.on("plotly_hover", (ev) => {
          const pt = ev && ev.points && ev.points[0];
          this.onHover(pt ? pt.pointIndex ?? pt.pointNumber : null);
        });
        this.el.on("plotly_unhover", () => this.onHover(null));
      });
    }
  }

  #push(c) {
    const s = this.s;
    s.x.push(Number(c.open_time));
    s.open.push(+c.open);
    s.high.push(+c.high);
    s.low.push(+c.low);
    s.close.push(+c.close);
    s.volume.push(+c.volume);
    s.closed.push(Boolean(c.closed));
    s.volColor.push(this.#volColor(+c.open, +c.close));
  }

  #insert(k, c) {
    this.#push(c);
    const s = this.s;
    for (const key of Object.keys(s)) s[key].splice(k, 0, s[key].pop());
  }

  #set(k, c) {
    const s = this.s;
    s.open[k] = +c.open;
    s.high[k] = +c.high;
    s.low[k] = +c.low;
    s.close[k] = +c.close;
    s.volume[k] = +c.volume;
    s.closed[k] = Boolean(c.closed);
    s.volColor[k] = this.#volColor(+c.open, +c.close);
  }

  #spacer() {
    const ivMs = this.#ivMs();
    if (this.s.x.length !== 1 || !ivMs) return { x: [], open: [], high: [], low: [], close: [] };
    const p = this.s.open[0];
    return { x: [this.s.x[0] - ivMs], open: [p], high: [p], low: [p], close: [p] };
  }

  #ivMs() {
    return intervalMs(this.interval);
  }

  #volColor(open, close) {
    return withAlpha(close >= open ? this.colors.up : this.colors.down, 0.45);
  }

  // A few hundred points: recomputing the overlays in full costs microseconds and keeps them exact.
  #recompute() {
    const close = this.s.close;
    this.ind.ema = this.overlays.ema ? ema(close, EMA_PERIOD) : [];
    this.ind.bb = this.overlays.bb ? bollinger(close, BB_PERIOD, BB_MULT) : { middle: [], upper: [], lower: [] };
  }

  #readColors() {
    return {
      up: cssVar("--up") || "#26a69a",
      down: cssVar("--down") || "#ef5350",
      text: cssVar("--text-dim") || "#8b98a5",
      grid: cssVar("--chart-grid") || "rgba(128,128,128,0.15)",
      axis: cssVar("--border") || "#2a3441",
      ema: cssVar("--ema") || "#f0b90b",
      bb: cssVar("--bb") || "#6b8afd",
      panel: cssVar("--panel") || "#10161d",
      spike: cssVar("--text-faint") || "#5c6773",
      forecast: cssVar("--forecast") || "#ab7df8",
    };
  }

  #traces() {
    const s = this.s;
    const c = this.colors;
    const none = { hoverinfo: "none" };
    const visEma = this.overlays.ema;
    const visBb = this.overlays.bb;
    return [
      {
        type: "candlestick", name: this.symbol, xaxis: "x", yaxis: "y", ...none,
        x: s.x, open: s.open, high: s.high, low: s.low, close: s.close,
        increasing: { line: { color: c.up, width: 1 }, fillcolor: c.up },
        decreasing: { line: { color: c.down, width: 1 }, fillcolor: c.down },
        whiskerwidth: 0,
      },
      {
        type: "bar", name: "Volume", xaxis: "x", yaxis: "y2", ...none,
        x: s.x, y: s.volume, marker: { color: s.volColor, line: { width: 0 } },
        width: this.#ivMs() ? this.#ivMs() * 0.72 : undefined,
      },
      {
        type: "scatter", mode: "lines", name: "BB upper", visible: visBb, ...none,
        x: s.x, y: visBb ? this.ind.bb.upper : [], line: { color: c.bb, width: 1 },
      },
      {
        type: "scatter", mode: "lines", name: "BB lower", visible: visBb, ...none,
        x: s.x, y: visBb ? this.ind.bb.lower : [], line: { color: c.bb, width: 1 },
        fill: "tonexty", fillcolor: withAlpha(c.bb, 0.07),
      },
      {
        type: "scatter", mode: "lines", name: "BB middle", visible: visBb, ...none,
        x: s.x, y: visBb ? this.ind.bb.middle : [], line: { color: c.bb, width: 1, dash: "dot" },
      },
      {
        type: "scatter", mode: "lines", name: "EMA 20", visible: visEma, ...none,
        x: s.x, y: visEma ? this.ind.ema : [], line: { color: c.ema, width: 1.5 },
      },
      // Plotly sizes candle bodies from the smallest gap between candles; a lone candle has none and
      // would be drawn as a hairline. An invisible candle one interval earlier gives it its width.
      {
        type: "candlestick", name: "spacer", xaxis: "x", yaxis: "y", hoverinfo: "skip", ...this.#spacer(),
        increasing: { line: { color: "rgba(0,0,0,0)", width: 0 }, fillcolor: "rgba(0,0,0,0)" },
        decreasing: { line: { color: "rgba(0,0,0,0)", width: 0 }, fillcolor: "rgba(0,0,0,0)" },
      },
      ...this.#forecastTraces(),
    ];
  }

  // The forecast cone: lower and upper edges (the band between them shaded) and the centre line.
  #forecastTraces() {
    const f = this.forecast;
    const c = this.colors.forecast;
    const on = f !== null;
    const xs = on ? [f.x0, f.x1] : [];
    const edge = { type: "scatter", mode: "lines", xaxis: "x", yaxis: "y", hoverinfo: "skip", visible: on };
    return [
      { ...edge, name: "Forecast lower", x: xs, y: on ? [f.y0, f.lower] : [], line: { color: withAlpha(c, 0.55), width: 1, dash: "dot" } },
      {
        ...edge, name: "Forecast upper", x: xs, y: on ? [f.y0, f.upper] : [],
        line: { color: withAlpha(c, 0.55), width: 1, dash: "dot" }, fill: "tonexty", fillcolor: withAlpha(c, 0.22),
      },
      {
        ...edge, name: "Forecast", mode: "lines+markers", x: xs, y: on ? [f.y0, f.y] : [],
        line: { color: c, width: 1.5, dash: "dash" }, marker: { color: c, size: [0, 8], line: { width: 0 } },
      },
    ];
  }

  #layout() {
    const c = this.colors;
    const n = this.s.x.length;
    const last = n ? this.s.close[n - 1] : null;
    const digits = last !== null ? priceDigits(last) : 2;
    const lastUp = n ? this.s.close[n - 1] >= this.s.open[n - 1] : true;
    const lastColor = lastUp ? c.up : c.down;
    const axis = {
      gridcolor: c.grid, linecolor: c.axis, zeroline: false, tickfont: { color: c.text, size: 11 },
      showspikes: true, spikemode: "across", spikesnap: "cursor", spikecolor: c.spike, spikethickness: 1,
      spikedash: "dot",
    };
    const layout = {
      datarevision: this.revision,
      uirevision: `${this.symbol}/${this.interval}`,
      // Opaque, the panel's colour: plotly outlines spike lines in the background colour.
      paper_bgcolor: c.panel,
      plot_bgcolor: c.panel,
      font: { family: getComputedStyle(document.body).fontFamily, color: c.text, size: 11 },
      margin: { l: 8, r: 72, t: 30, b: 30 },
      showlegend: false,
      dragmode: "pan",
      hovermode: "x",
      hoverdistance: -1,
      spikedistance: -1,
      bargap: 0.2,
      xaxis: {
        ...axis, type: "date", anchor: "y2", rangeslider: { visible: false }, showline: true,
        hoverformat: this.interval === "1d" ? "%Y-%m-%d" : "%Y-%m-%d %H:%M",
      },
      yaxis: {
        ...axis, domain: [0.25, 1], side: "right", tickformat: `,.${digits}f`, hoverformat: `,.${digits}f`,
        showline: true, autorange: true, fixedrange: false,
      },
      yaxis2: {
        ...axis, domain: [0, 0.2], side: "right", tickformat: "~s", showline: true, showspikes: false,
        rangemode: "tozero", nticks: 3,
      },
      shapes: [],
      annotations: [],
    };
    const ivMs = this.#ivMs();
    const f = this.forecast;
    if (n > 0 && n < MIN_SPAN && ivMs) {
      const x0 = this.s.x[0];
      const end = Math.max(x0 + (MIN_SPAN - 0.4) * ivMs, f ? f.x1 + 2 * ivMs : -Infinity);
      layout.xaxis.range = [x0 - 0.6 * ivMs, end];
      layout.xaxis.autorange = false;
    } else {
      layout.xaxis.autorange = true;
    }
    if (last !== null) {
      layout.shapes.push({
        type: "line", xref: "paper", x0: 0, x1: 1, yref: "y", y0: last, y1: last,
        line: { color: lastColor, width: 1, dash: "dot" }, layer: "below",
      });
      layout.annotations.push({
        xref: "paper", x: 1, xanchor: "left", yref: "y", y: last, yanchor: "middle", showarrow: false,
        text: formatPrice(last, digits), font: { color: "#ffffff", size: 11 },
        bgcolor: lastColor, borderpad: 3, xshift: 2,
      });
    }
    if (f) {
      layout.annotations.push({
        x: f.x1, y: f.upper, xref: "x", yref: "y", xanchor: "right", yanchor: "bottom", showarrow: false,
        text: f.label, font: { color: c.forecast, size: 11 }, yshift: 4,
      });
    }
    return layout;
  }

  #config() {
    return {
      responsive: false, // the ResizeObserver above does it, for container changes too
      displaylogo: false,
      scrollZoom: true,
      showTips: false,
      modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d", "zoomIn2d", "zoomOut2d"],
      toImageButtonOptions: { filename: `coincast-${this.symbol}-${this.interval}` },
    };
  }
}
