// WebSocket client for /ws: keeps a set of subscriptions, re-sends them after every (re)connect,
// reconnects with capped exponential backoff and jitter, and treats a silent socket as dead.

const BASE_DELAY_MS = 500;
const MAX_DELAY_MS = 15000;
// The server pushes tickers about once a second; this long without any message means the
// connection is dead even if the browser has not noticed yet.
const SILENCE_MS = 12000;

function subKey(msg) {
  return [msg.channel, msg.symbol || "", msg.interval || ""].join("|");
}

export class LiveSocket {
  /**
   * @param {string} url ws:// or wss:// address of /ws
   * @param {{onMessage: (msg: object) => void, onStatus: (state: string, info: object) => void}} handlers
   */
  constructor(url, { onMessage, onStatus }) {
    this.url = url;
    this.onMessage = onMessage;
    this.onStatus = onStatus;
    this.subs = new Map();
    this.ws = null;
    this.attempt = 0;
    this.connects = 0;
    this.retryTimer = null;
    this.watchdog = null;
    this.lastMessageAt = 0;
  }

  start() {
    if (!this.ws && !this.retryTimer) this.#connect();
  }

  /** Subscribe now if connected, and again after every reconnect. */
  subscribe(msg) {
    const full = { op: "subscribe", ...msg };
    this.subs.set(subKey(full), full);
    this.#send(full);
  }

  unsubscribe(msg) {
    const key = subKey(msg);
    if (this.subs.delete(key)) this.#send({ ...msg, op: "unsubscribe" });
  }

  /** Drop the current connection; the normal reconnect path brings it back. */
  drop() {
    if (this.ws) this.ws.close();
  }

  get connected() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  #send(obj) {
    if (this.connected) this.ws.send(JSON.stringify(obj));
  }

  #connect() {
    this.retryTimer = null;
    this.onStatus(this.connects === 0 ? "connecting" : "reconnecting", { attempt: this.attempt });
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (err) {
      this.#scheduleRetry(String(err));
      return;
    }
    this.ws = ws;
    ws.addEventListener("open", () => {
      if (this.ws !== ws) return;
      this.attempt = 0;
      this.connects += 1;
      this.lastMessageAt = Date.now();
      for (const msg of this.subs.values()) ws.send(JSON.stringify(msg));
      this.#armWatchdog();
      this.onStatus("open", { reconnected: this.connects > 1 });
    });
    ws.addEventListener("message", (ev) => {
      if (this.ws !== ws) return;
      this.lastMessageAt = Date.now();
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return; // not JSON: nothing we can use
      }
      this.onMessage(msg);
    });
    ws.addEventListener("close", (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.#scheduleRetry(ev.reason || `closed (${ev.code})`);
    });
    // "error" is always followed by "close", which does the retry.
  }

  #scheduleRetry(reason) {
    clearInterval(this.watchdog);
    this.watchdog = null;
    const cap = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** this.attempt);
    const delay = Math.round(cap / 2 + Math.random() * (cap / 2)); // "equal jitter"
    this.attempt += 1;
    this.onStatus("closed", { delayMs: delay, reason, retryAt: Date.now() + delay });
    this.retryTimer = setTimeout(() => this.#connect(), delay);
  }

  #armWatchdog() {
    clearInterval(this.watchdog);
    this.watchdog = setInterval(() => {
      if (this.connected && Date.now() - this.lastMessageAt > SILENCE_MS) this.ws.close();
    }, 2000);
  }
}
