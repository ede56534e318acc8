// Live market page: wires the REST API, the WebSocket feed, the chart and the market table.

import { AnalyticsPage } from "./analytics.js";
import { BacktestPage } from "./backtest.js";
import { AssistantPage } from "./assistant.js";
import { api } from "./api.js";
import { CandleChart } from "./chart.js";
import {
  formatCandleTime, formatCompact, formatDuration, formatInt, formatPct, formatPrice, formatRate, priceDigits,
} from "./format.js";
import { ForecastStrip } from "./forecast.js";
import { LiveSocket } from "./live.js";
import { MarketTable } from "./markets.js";
import { ModelsPage } from "./models.js";
import { initTheme } from "./theme.js";

const CANDLE_LIMIT = 500;
// A candle can be missing from a fresh history (it closed while the page was loading and was not
// yet written to the store); the chart asks for the missing range again this long after.
const REPAIR_DELAY_MS = 3000;
const REPAIR_TRIES = 3;
const HEALTH_EVERY_MS = 5000;
const STORE = { symbol: "coincast.symbol", interval: "coincast.interval", overlays: "coincast.overlays" };
const FALLBACK_INTERVALS = ["1m", "5m", "1h", "1d"];

const $ = (id) => document.getElementById(id);

function load(key) {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

function save(key, value) {
  try {
    localStorage.setItem(key, value);
  } catch {
    /* storage disabled: the choice just is not remembered */
  }
}

const state = {
  symbols: [],
  intervals: FALLBACK_INTERVALS,
  symbol: "",
  interval: "1m",
  loadSeq: 0,
  loading: false,
  pending: [],
  hoverIndex: null,
  lastPrice: null,
  retryTimer: null,
  repairTimer: null,
  repairTries: 0,
};

const chart = new CandleChart($("chart"), {
  onHover: (index) => {
    state.hoverIndex = index;
    renderOhlc();
  },
});

const markets = new MarketTable($("markets").tBodies[0], { onSelect: (symbol) => show(symbol, state.interval) });

const analytics = new AnalyticsPage($("page-analytics"));
const models = new ModelsPage($("page-models"));
const forecast = new ForecastStrip($("forecast-strip"), chart);
// The pages besides the market, by hash route (#/analytics, #/models); each lives in #page-<name>.
const PAGES = { analytics, models, assistant: new AssistantPage($("page-assistant")), backtest: new BacktestPage($("page-backtest")) };
const pageName = () => {
  const m = /^#\/(\w+)/.exec(location.hash);
  return m && Object.hasOwn(PAGES, m[1]) ? m[1] : "";
};
const offMarket = () => pageName() !== ""; // another page than the market is showing

/** Show the page the hash names: #/analytics, #/models, else the market (#SYMBOL/interval, the default). */
function route() {
  const page = pageName();
  $("page-market").hidden = page !== "";
  for (const [name, p] of Object.entries(PAGES)) {
    $(`page-${name}`).hidden = name !== page;
    if (name === page) p.show();
    else p.hide();
  }
  for (const a of document.querySelectorAll(".nav-link[data-page]")) {
    if (a.dataset.page === (page || "market")) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  return page !== "";
}

/** The phone menu: the button opens and closes the page links; a choice, Escape or a tap elsewhere closes it. */
function initMenu() {
  const button = $("nav-toggle");
  const nav = $("nav");
  const set = (open) => {
    button.setAttribute("aria-expanded", String(open));
    button.setAttribute("aria-label", open ? "Close menu" : "Menu");
    nav.toggleAttribute("data-open", open);
  };
  button.addEventListener("click", () => set(!nav.hasAttribute("data-open")));
  nav.addEventListener("click", (ev) => ev.target.closest("a") && set(false));
  document.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape" && nav.hasAttribute("data-open")) {
      set(false);
      button.focus();
    }
  });
  document.addEventListener("click", (ev) => {
    if (!nav.contains(ev.target) && !button.contains(ev.target)) set(false);
  });
}

const live = new LiveSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`, {
  onMessage,
  onStatus,
});

// ---------------------------------------------------------------------------------------------- view

function showMessage(text) {
  const el = $("chart-msg");
  el.textContent = text || "";
  el.hidden = !text;
}

/** The chart shows what the user picked (not the previous view, still up while a new one loads). */
function chartIsCurrent() {
  return chart.symbol === state.symbol && chart.interval === state.interval;
}

function renderOhlc() {
  const c = !chartIsCurrent() ? null : state.hoverIndex === null ? chart.candleAt(-1) : chart.candleAt(state.hoverIndex);
  const digits = c ? priceDigits(c.close) : 2;
  const p = (v) => (c ? formatPrice(v, digits) : "—");
  $("ohlc-time").textContent = c ? formatCandleTime(c.open_time, state.interval) + (c.closed ? "" : " · live") : "—";
  $("ohlc-o").textContent = p(c && c.open);
  $("ohlc-h").textContent = p(c && c.high);
  $("ohlc-l").textContent = p(c && c.low);
  $("ohlc-c").textContent = p(c && c.close);
  $("ohlc-v").textContent = c ? formatCompact(c.volume) : "—";
  const ohlc = $("ohlc");
  ohlc.classList.toggle("up", Boolean(c && c.close >= c.open));
  ohlc.classList.toggle("down", Boolean(c && c.close < c.open));
  const parts = [];
  if (c && c.ema !== null) parts.push(`<span class="ind-ema">EMA ${formatPrice(c.ema, digits)}</span>`);
  if (c && c.bbUpper !== null) {
    parts.push(`<span class="ind-bb">BB ${formatPrice(c.bbLower, digits)} – ${formatPrice(c.bbUpper, digits)}</span>`);
  }
  $("ohlc-ind").innerHTML = parts.join("");
}

function renderHeader() {
  const last = chartIsCurrent() ? chart.candleAt(-1) : null;
  const t = markets.get(state.symbol);
  const price = last ? last.close : t ? t.price : null;
  const el = $("last-price");
  if (price !== null && price !== undefined) {
    el.textContent = formatPrice(price);
    if (state.lastPrice !== null && price !== state.lastPrice) {
      el.classList.toggle("up", price > state.lastPrice);
      el.classList.toggle("down", price < state.lastPrice);
    }
    state.lastPrice = price;
    document.title = `${state.symbol} ${formatPrice(price)} · coincast`;
  } else {
    el.textContent = "—";
  }
  const chg = $("last-change");
  chg.textContent = t ? formatPct(t.change_24h_pct) : "—";
  chg.classList.toggle("up", Boolean(t && t.change_24h_pct > 0));
  chg.classList.toggle("down", Boolean(t && t.change_24h_pct < 0));
  $("stat-high").textContent = t ? formatPrice(t.high_24h) : "—";
  $("stat-low").textContent = t ? formatPrice(t.low_24h) : "—";
  $("stat-volume").textContent = t ? formatCompact(t.volume_24h) : "—";
}

function renderSelectors() {
  const select = $("symbol-select");
  if (select.options.length !== state.symbols.length) {
    select.replaceChildren(...state.symbols.map((s) => new Option(s, s)));
  }
  select.value = state.symbol;
  for (const btn of $("interval-group").querySelectorAll("button")) {
    const on = btn.dataset.interval === state.interval;
    btn.classList.toggle("active", on);
    btn.setAttribute("aria-pressed", on ? "true" : "false");
  }
  markets.setActive(state.symbol);
}

function buildIntervalButtons() {
  const group = $("interval-group");
  group.replaceChildren(
    ...state.intervals.map((iv) => {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "seg-btn";
      b.dataset.interval = iv;
      b.textContent = iv;
      b.addEventListener("click", () => show(state.symbol, iv));
      return b;
    }),
  );
}

// ---------------------------------------------------------------------------------------------- data

const candleSub = (symbol, interval) => ({ channel: "candles", symbol, interval });

/** Switch the chart to symbol/interval: subscribe first, load history, then replay what arrived meanwhile. */
function show(symbol, interval) {
  if (!symbol) return;
  if (symbol !== state.symbol || interval !== state.interval) {
    if (state.symbol) live.unsubscribe(candleSub(state.symbol, state.interval));
    state.symbol = symbol;
    state.interval = interval;
    state.lastPrice = null;
    save(STORE.symbol, symbol);
    save(STORE.interval, interval);
    if (!offMarket()) history.replaceState(null, "", `#${symbol}/${interval}`);
    live.subscribe(candleSub(symbol, interval));
  }
  renderSelectors();
  forecast.setView(state.symbol, state.interval);
  reload();
}

/** Fetch the candles missing between the first hole and now, a little later, a few times at most. */
function scheduleRepair() {
  if (state.repairTimer !== null || state.repairTries >= REPAIR_TRIES || chart.firstHole() === null) return;
  const seq = state.loadSeq;
  state.repairTimer = setTimeout(async () => {
    state.repairTimer = null;
    const from = chart.firstHole();
    if (seq !== state.loadSeq || from === null) return;
    state.repairTries += 1;
    try {
      const body = await api.candles(state.symbol, state.interval, CANDLE_LIMIT, { start: from });
      if (seq !== state.loadSeq) return;
      for (const c of body.candles) if (c.closed) chart.apply(c);
    } catch {
      /* the next live candle schedules another try */
    }
    scheduleRepair();
  }, REPAIR_DELAY_MS);
}

async function reload() {
  clearTimeout(state.retryTimer);
  clearTimeout(state.repairTimer);
  state.repairTimer = null;
  state.repairTries = 0;
  const seq = ++state.loadSeq;
  const { symbol, interval } = state;
  state.loading = true;
  state.pending = [];
  // Keep showing the previous chart, dimmed, until the new history is in; say so if it takes long.
  const switching = chart.symbol !== symbol || chart.interval !== interval;
  const wrap = $("chart").parentElement;
  wrap.classList.toggle("loading", switching);
  const slow = switching ? setTimeout(() => showMessage(`Loading ${symbol} ${interval}…`), 400) : null;
  try {
    const body = await api.candles(symbol, interval, CANDLE_LIMIT);
    if (seq !== state.loadSeq) return;
    chart.load(symbol, interval, body.candles);
    for (const c of state.pending) chart.apply(c);
    scheduleRepair();
    showMessage(chart.length ? "" : `No ${interval} candles for ${symbol} yet: waiting for the first trade…`);
  } catch (err) {
    if (seq !== state.loadSeq) return;
    showMessage(`Could not load ${symbol} ${interval}: ${err.message}. Retrying…`);
    state.retryTimer = setTimeout(() => seq === state.loadSeq && reload(), 3000);
  } finally {
    clearTimeout(slow);
    if (seq === state.loadSeq) {
      wrap.classList.remove("loading");
      state.loading = false;
      state.pending = [];
      renderHeader();
      renderOhlc();
    }
  }
}

function onMessage(msg) {
  switch (msg.type) {
    case "candle":
      if (msg.symbol !== state.symbol || msg.interval !== state.interval || !msg.candle) return;
      if (state.loading) {
        state.pending.push(msg.candle);
      } else if (chart.apply(msg.candle)) {
        scheduleRepair();
        showMessage("");
        renderHeader();
        if (state.hoverIndex === null) renderOhlc();
      }
      return;
    case "tickers":
      if (Array.isArray(msg.tickers)) {
        markets.update(msg.tickers);
        renderHeader();
      }
      return;
    case "prediction":
      forecast.onPrediction(msg);
      models.onPrediction(msg);
      return;
    case "training":
      models.onTraining(msg);
      return;
    case "error":
      showNotice(`Server: ${msg.detail || msg.error}`);
      return;
    default:
      return; // "subscribed" and anything newer than this page
  }
}

let connTimer = null;

function onStatus(kind, info) {
  const el = $("conn");
  const label = el.querySelector(".conn-label");
  clearInterval(connTimer);
  if (kind === "open") {
    el.dataset.state = "live";
    label.textContent = "Live";
    el.title = "Connected to the live feed";
    if (info.reconnected) {
      // Candles and tickers may have moved while we were away: fetch them again.
      reload();
      refreshTickers();
    }
  } else if (kind === "closed") {
    el.dataset.state = "down";
    const tick = () => {
      const s = Math.max(0, Math.ceil((info.retryAt - Date.now()) / 1000));
      label.textContent = s > 0 ? `Reconnecting in ${s}s` : "Reconnecting…";
    };
    tick();
    connTimer = setInterval(tick, 500);
    el.title = `Live feed disconnected: ${info.reason}`;
  } else {
    el.dataset.state = "connecting";
    label.textContent = kind === "reconnecting" ? "Reconnecting…" : "Connecting…";
  }
}

let noticeTimer = null;

function showNotice(text) {
  showMessage(text);
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => chart.length && showMessage(""), 6000);
}

async function refreshTickers() {
  try {
    const body = await api.tickers();
    markets.update(body.tickers || []);
    renderHeader();
  } catch {
    /* the WebSocket ticker channel fills the table too */
  }
}

async function refreshHealth() {
  try {
    const h = await api.health();
    forecast.onHealth(h);
    models.onHealth(h);
    const src = h.source || {};
    $("sim-banner").hidden = !src.simulated;
    const why = src.auto ? src.auto.replace(/^simulated market: /, "") : "";
    $("sim-reason").textContent = why ? `· ${why.split(" (")[0]}` : "";
    $("sim-reason").title = why;
    document.body.classList.toggle("simulated", Boolean(src.simulated));
    const stale = src.connected === false || src.stale_since_ms > 0;
    const srcEl = $("st-source");
    srcEl.textContent = `Source ${src.name || "?"}${src.simulated ? " (simulated)" : ""} · ${stale ? "stale" : "streaming"}`;
    srcEl.classList.toggle("warn", stale);
    srcEl.title = src.last_error ? `Last error: ${src.last_error}` : `Reconnects ${src.reconnects ?? 0}, gaps ${src.gaps ?? 0} (${src.gaps_repaired ?? 0} repaired)`;
    const rates = h.rates || {};
    const counts = h.counts || {};
    $("feed-source").textContent = `${src.name || "?"}${src.simulated ? " · simulated" : ""}`;
    $("f-trade-rate").textContent = formatRate(rates.trades_per_s);
    $("f-candle-rate").textContent = formatRate(rates.candles_per_s);
    $("f-trades").textContent = formatInt(counts.trades);
    $("f-closed").textContent = formatInt(counts.candles_closed);
    $("f-late").textContent = formatInt(counts.late_trades);
    $("f-dup").textContent = formatInt(counts.duplicate_trades);
    $("f-dead").textContent = formatInt(counts.dead_letters);
    $("f-dead").classList.toggle("warn", counts.dead_letters > 0);
    $("f-gaps").textContent = `${formatInt(src.reconnects ?? 0)} · ${formatInt(src.gaps ?? 0)}`;
    const age = Number.isFinite(src.last_message_ms) && src.last_message_ms > 0 ? (Date.now() - src.last_message_ms) / 1000 : NaN;
    $("st-last").textContent = Number.isFinite(age) ? `last message ${age < 60 ? `${Math.max(0, age).toFixed(1)}s` : formatDuration(age)} ago` : "";
    showHistory(h.history);
    $("st-uptime").textContent = `up ${formatDuration(h.uptime_s)}`;
    $("st-version").textContent = `coincast ${h.version || ""}`.trim();
  } catch (err) {
    $("st-source").textContent = `API unreachable: ${err.message}`;
    $("st-source").classList.add("warn");
  }
}

/** The background download of Binance history (``history`` in /health): progress, then done or why it stopped. */
function showHistory(history) {
  const el = $("st-history");
  el.hidden = !history || history.status === "done";
  if (el.hidden) return;
  const pct = history.percent == null ? "" : ` ${history.percent.toFixed(0)}%`;
  el.textContent = history.status === "failed" ? "History download stopped" : `Downloading history${pct}`;
  el.title = history.status === "failed" ? history.error
    : Object.entries(history.intervals).map(([iv, p]) => `${iv}: ${p.done}${p.total == null ? "" : ` of ${p.total}`} candles`).join(", ");
  el.classList.toggle("warn", history.status === "failed");
}

// ---------------------------------------------------------------------------------------------- start

function initOverlays() {
  let saved = {};
  try {
    saved = JSON.parse(load(STORE.overlays) || "{}") || {};
  } catch {
    saved = {};
  }
  const overlays = { ema: saved.ema !== false, bb: saved.bb === true };
  const emaBox = $("toggle-ema");
  const bbBox = $("toggle-bb");
  emaBox.checked = overlays.ema;
  bbBox.checked = overlays.bb;
  const apply = () => {
    const next = { ema: emaBox.checked, bb: bbBox.checked };
    save(STORE.overlays, JSON.stringify(next));
    chart.setOverlays(next);
    renderOhlc();
  };
  emaBox.addEventListener("change", apply);
  bbBox.addEventListener("change", apply);
  chart.setOverlays(overlays);
}

function initialView() {
  const [hashSymbol, hashInterval] = decodeURIComponent(location.hash.slice(1)).split("/");
  const pick = (list, ...candidates) => candidates.find((c) => c && list.includes(c)) || list[0];
  return {
    symbol: pick(state.symbols, hashSymbol && hashSymbol.toUpperCase(), load(STORE.symbol)),
    interval: pick(state.intervals, hashInterval, load(STORE.interval)),
  };
}

async function start() {
  initTheme($("theme-toggle"), () => {
    chart.refreshTheme();
    for (const p of Object.values(PAGES)) p.refreshTheme();
  });
  route();
  initMenu();
  document.querySelector(".nav-link[data-page='market']").addEventListener("click", (ev) => {
    if (!offMarket() || !state.symbol) return; // a full load of / is the fallback
    ev.preventDefault();
    location.hash = `#${state.symbol}/${state.interval}`;
  });
  initOverlays();
  $("symbol-select").addEventListener("change", (ev) => show(ev.target.value, state.interval));
  window.addEventListener("hashchange", () => {
    if (route() || !state.symbols.length) return;
    const view = initialView();
    show(view.symbol, view.interval);
  });
  refreshHealth();
  setInterval(refreshHealth, HEALTH_EVERY_MS);
  live.subscribe({ channel: "tickers" });
  live.start();

  let meta = null;
  for (let wait = 1000; meta === null; wait = Math.min(wait * 2, 10000)) {
    try {
      meta = await api.symbols();
    } catch (err) {
      showMessage(`Could not reach the API (${err.message}); retrying…`);
      await new Promise((r) => setTimeout(r, wait));
    }
  }
  state.symbols = meta.symbols || [];
  state.intervals = meta.intervals && meta.intervals.length ? meta.intervals : FALLBACK_INTERVALS;
  buildIntervalButtons();
  markets.setSymbols(state.symbols);
  refreshTickers();
  if (!state.symbols.length) {
    showMessage("The server lists no symbols.");
    return;
  }
  const view = initialView();
  show(view.symbol, view.interval);
}

// Debug handle for the browser console and the end-to-end test.
window.coincast = { state, chart, live, markets, show, analytics, models, forecast };

if (window.Plotly) start();
else window.addEventListener("load", start, { once: true });
