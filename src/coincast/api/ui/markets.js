// Market overview: one row per symbol with last price, 24h change and volume, kept up to date
// from /api/v1/tickers and the "tickers" WebSocket channel. Clicking a row selects the symbol.

import { formatCompact, formatPct, formatPrice, splitSymbol } from "./format.js";

export class MarketTable {
  /**
   * @param {HTMLTableSectionElement} tbody
   * @param {{onSelect: (symbol: string) => void}} handlers
   */
  constructor(tbody, { onSelect }) {
    this.tbody = tbody;
    this.onSelect = onSelect;
    this.rows = new Map();
    this.tickers = new Map();
    this.active = "";
    tbody.addEventListener("click", (ev) => {
      const tr = ev.target.closest("tr[data-symbol]");
      if (tr) this.onSelect(tr.dataset.symbol);
    });
    tbody.addEventListener("keydown", (ev) => {
      const tr = ev.target.closest("tr[data-symbol]");
      if (tr && (ev.key === "Enter" || ev.key === " ")) {
        ev.preventDefault();
        this.onSelect(tr.dataset.symbol);
      }
    });
  }

  /** Create the rows, in the order the API lists the symbols. */
  setSymbols(symbols) {
    this.tbody.replaceChildren();
    this.rows.clear();
    for (const symbol of symbols) {
      const tr = document.createElement("tr");
      tr.dataset.symbol = symbol;
      tr.tabIndex = 0;
      tr.setAttribute("role", "button");
      tr.setAttribute("aria-label", `Show ${symbol}`);
      const [base, quote] = splitSymbol(symbol);
      tr.innerHTML =
        `<td class="sym"><span class="base"></span><span class="quote"></span></td>` +
        `<td class="num price">—</td><td class="num chg">—</td><td class="num vol">—</td>`;
      tr.querySelector(".base").textContent = base;
      tr.querySelector(".quote").textContent = quote ? `/${quote}` : "";
      this.tbody.appendChild(tr);
      this.rows.set(symbol, tr);
    }
    this.setActive(this.active);
    for (const t of this.tickers.values()) this.#paint(t, false);
  }

  setActive(symbol) {
    this.active = symbol;
    for (const [sym, tr] of this.rows) {
      const on = sym === symbol;
      tr.classList.toggle("active", on);
      tr.setAttribute("aria-pressed", on ? "true" : "false");
    }
  }

  /** @returns {object|undefined} the latest ticker of a symbol */
  get(symbol) {
    return this.tickers.get(symbol);
  }

  update(tickers) {
    for (const t of tickers) {
      const prev = this.tickers.get(t.symbol);
      this.tickers.set(t.symbol, t);
      const dir = prev && Number.isFinite(prev.price) ? Math.sign(t.price - prev.price) : 0;
      this.#paint(t, dir);
    }
  }

  #paint(t, dir) {
    const tr = this.rows.get(t.symbol);
    if (!tr) return;
    const price = tr.querySelector(".price");
    price.textContent = formatPrice(t.price);
    const chg = tr.querySelector(".chg");
    chg.textContent = formatPct(t.change_24h_pct);
    chg.classList.toggle("up", t.change_24h_pct > 0);
    chg.classList.toggle("down", t.change_24h_pct < 0);
    tr.querySelector(".vol").textContent = formatCompact(t.volume_24h);
    if (dir) {
      price.classList.remove("flash-up", "flash-down");
      void price.offsetWidth; // restart the CSS animation
      price.classList.add(dir > 0 ? "flash-up" : "flash-down");
    }
  }
}
