// Honest numbers on small samples: a figure from a handful of observations is shown with its
// sample size, is not annualised and is not coloured as good or bad.

/** Below this many observations a metric is shown muted and annualised figures are withheld. */
export const MIN_N = 30;

/** 95 % Wilson score interval of a proportion ``p`` observed over ``n`` trials: [low, high]. */
export function wilson(p, n, z = 1.96) {
  if (!Number.isFinite(p) || !(n > 0)) return [NaN, NaN];
  const z2 = z * z;
  const centre = (p + z2 / (2 * n)) / (1 + z2 / n);
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / (1 + z2 / n);
  return [Math.max(0, centre - half), Math.min(1, centre + half)];
}

/** ``cls`` when the sample is large enough to colour a result, else "" (neutral). */
export const toneIf = (n, cls) => (n >= MIN_N ? cls : "");

/** True when ``n`` observations are too few to judge. */
export const tooFew = (n) => !(n >= MIN_N);
