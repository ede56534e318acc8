// Assistant page: a chat with the market assistant (POST /api/v1/assistant/ask). Each answer shows
// its text, what was understood (intent, symbols, horizon), the numbers it cites as chips and its
// sources. Suggested questions fill the box. The page builds its own DOM inside #page-assistant.

import { requestJSON } from "./api.js";
import { formatPct, formatPrice } from "./format.js";
import { esc } from "./forecast.js";

const SUGGESTIONS = [
  "What is the bitcoin forecast for the next hour?",
  "Compare ETH and SOL",
  "Is BTC overbought?",
  "How risky is solana?",
  "Which model forecasts bitcoin?",
  "Bitcoin news sentiment",
];

const PAGE_HTML = `
<section class="panel as-chat" aria-labelledby="as-h">
  <div class="panel-head"><h2 id="as-h">Market assistant</h2>
    <span class="panel-sub">answers from coincast's own data · not financial advice</span></div>
  <div class="as-log" id="as-log" role="log" aria-live="polite"></div>
  <div class="as-suggest" id="as-suggest" aria-label="Suggested questions"></div>
  <form class="as-form" id="as-form" autocomplete="off">
    <input id="as-input" name="question" maxlength="500" placeholder="Ask about prices, forecasts, indicators, risk, news…" aria-label="Question">
    <button type="submit" class="as-send" id="as-send">Ask</button>
  </form>
</section>`;

const sign = (x) => (x > 0 ? "up" : x < 0 ? "down" : "");

/** The cited numbers of an answer's facts as [label, value, css class] chips. */
function chips(facts) {
  const out = [];
  for (const [sym, p] of Object.entries(facts.price || {})) {
    out.push([`${sym} price`, formatPrice(p.price), ""]);
    out.push([`${sym} 24 h`, formatPct(p.change_24h_pct), sign(p.change_24h_pct)]);
  }
  for (const [sym, f] of Object.entries(facts.forecast || {})) {
    out.push([`${sym} ${f.horizon} forecast`, formatPrice(f.predicted_price), sign(f.change_pct)]);
    out.push([`${Math.round(f.level * 100)}% interval`, `${formatPrice(f.lower)} – ${formatPrice(f.upper)}`, ""]);
    const m = f.track_record && f.track_record.mase;
    if (Number.isFinite(m)) out.push([`live MASE (n=${f.track_record.n})`, m.toFixed(3), m < 1 ? "up" : "down"]);
  }
  for (const [sym, t] of Object.entries(facts.technical || {})) {
    if (Number.isFinite(t.rsi_14)) out.push([`${sym} RSI 14`, t.rsi_14.toFixed(1), ""]);
    if (t.trend) out.push([`${sym} trend`, t.trend, t.trend === "up" ? "up" : t.trend === "down" ? "down" : ""]);
  }
  for (const [sym, r] of Object.entries(facts.risk || {})) {
    out.push([`${sym} volatility/yr`, `${r.volatility_annual_pct.toFixed(2)}%`, ""]);
    out.push([`${sym} max drawdown`, `${r.max_drawdown_pct.toFixed(2)}%`, "down"]);
  }
  for (const [sym, m] of Object.entries(facts.model || {})) out.push([`${sym} model`, m.model, ""]);
  const news = facts.news;
  if (news && news.available) {
    for (const [sym, s] of Object.entries(news.by_symbol || {})) {
      out.push([`${sym} sentiment (${s.articles})`, `${s.label} ${s.sentiment.toFixed(2)}`, sign(s.sentiment)]);
    }
  }
  return out;
}

export class AssistantPage {
  /** @param {HTMLElement} root the page container (#page-assistant) */
  constructor(root) {
    this.root = root;
    this.built = false;
    this.busy = false;
  }

  show() {
    if (!this.built) this.#build();
    this.root.querySelector("#as-input").focus();
  }

  hide() {}

  refreshTheme() {} // colours are CSS variables only

  #build() {
    this.root.innerHTML = PAGE_HTML;
    this.built = true;
    const suggest = this.root.querySelector("#as-suggest");
    for (const q of SUGGESTIONS) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "as-chip-btn";
      b.textContent = q;
      b.addEventListener("click", () => this.ask(q));
      suggest.append(b);
    }
    this.root.querySelector("#as-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const input = this.root.querySelector("#as-input");
      const q = input.value.trim();
      if (q) {
        input.value = "";
        this.ask(q);
      }
    });
    this.#bubble("bot", `<p>Ask me about prices, live forecasts and their track record, indicators, risk, news
      sentiment or the models. I only use coincast's data and cite the numbers.</p>`);
  }

  #bubble(who, html) {
    const div = document.createElement("div");
    div.className = `as-msg as-${who}`;
    div.innerHTML = html;
    const log = this.root.querySelector("#as-log");
    log.append(div);
    log.scrollTop = log.scrollHeight;
    return div;
  }

  /** Send one question and render the answer (or the error) under it. */
  async ask(question) {
    if (this.busy) return;
    this.busy = true;
    this.root.querySelector("#as-send").disabled = true;
    this.#bubble("user", `<p>${esc(question)}</p>`);
    const pending = this.#bubble("bot", `<p class="as-dim">Thinking…</p>`);
    try {
      const a = await requestJSON("POST", "/api/v1/assistant/ask", { body: { question } });
      const cited = chips(a.facts)
        .map(([k, v, c]) => `<span class="as-fact"><span class="as-k">${esc(k)}</span> <b class="${c}">${esc(v)}</b></span>`)
        .join("");
      const meta = [a.intent, a.symbols.join(", "), a.intent === "forecast" || a.intent === "model" ? a.horizon : ""]
        .filter(Boolean).map(esc).join(" · ");
      const llm = a.llm && a.llm.used ? ` · phrased by ${esc(a.llm.model)}` : a.llm && a.llm.fallback ? " · LLM unavailable, template" : "";
      const sources = (a.sources || []).map((s) => (/^https?:/.test(s)
        ? `<li><a href="${esc(s)}" target="_blank" rel="noopener">${esc(s)}</a></li>` : `<li>${esc(s)}</li>`)).join("");
      pending.innerHTML = `<p class="as-answer">${esc(a.answer)}</p>
        ${cited ? `<div class="as-facts">${cited}</div>` : ""}
        <div class="as-meta">${meta}${llm}</div>
        ${sources ? `<details class="as-sources"><summary>Sources</summary><ul>${sources}</ul></details>` : ""}`;
    } catch (err) {
      pending.innerHTML = `<p class="as-error">The assistant could not answer: ${esc(err.message || String(err))}</p>`;
    } finally {
      this.busy = false;
      this.root.querySelector("#as-send").disabled = false;
    }
  }
}
