// Technical overlays computed in the browser from the candles on screen.
// Pure functions over arrays of numbers; every output has the input's length and holds
// null where the indicator is not ready yet (Plotly leaves a gap for null).

/**
 * Exponential moving average, seeded with the simple average of the first `period`
 * values (the TA-Lib convention), then ema[i] = k * x[i] + (1 - k) * ema[i - 1], k = 2 / (period + 1).
 * @param {number[]} values
 * @param {number} period
 * @returns {(number|null)[]}
 */
export function ema(values, period = 20) {
  const n = values.length;
  const out = new Array(n).fill(null);
  if (!(period >= 1) || n < period) return out;
  const k = 2 / (period + 1);
  let sum = 0;
  for (let i = 0; i < period; i++) sum += values[i];
  let prev = sum / period;
  out[period - 1] = prev;
  for (let i = period; i < n; i++) {
    prev = k * values[i] + (1 - k) * prev;
    out[i] = prev;
  }
  return out;
}

/**
 * Bollinger bands: middle = simple moving average over `period`, upper/lower = middle ± mult × the
 * population standard deviation (ddof = 0, as Bollinger and TA-Lib define it) of the same window.
 * Each window is summed directly (period × n operations, tiny for a chart) rather than with running
 * sums of squares, which lose precision at BTC price levels.
 * @param {number[]} values
 * @param {number} period
 * @param {number} mult
 * @returns {{middle: (number|null)[], upper: (number|null)[], lower: (number|null)[]}}
 */
export function bollinger(values, period = 20, mult = 2) {
  const n = values.length;
  const middle = new Array(n).fill(null);
  const upper = new Array(n).fill(null);
  const lower = new Array(n).fill(null);
  if (!(period >= 1)) return { middle, upper, lower };
  for (let i = period - 1; i < n; i++) {
    let sum = 0;
    for (let j = i - period + 1; j <= i; j++) sum += values[j];
    const mean = sum / period;
    let sq = 0;
    for (let j = i - period + 1; j <= i; j++) {
      const d = values[j] - mean;
      sq += d * d;
    }
    const sd = Math.sqrt(sq / period);
    middle[i] = mean;
    upper[i] = mean + mult * sd;
    lower[i] = mean - mult * sd;
  }
  return { middle, upper, lower };
}
