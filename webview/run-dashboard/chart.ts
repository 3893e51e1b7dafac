/**
 * A small SVG line chart for the training dashboard: axes with round ticks, one path per series
 * (broken where a value is NaN or infinite), the last value labelled, and an aria-label that
 * states the latest values. Colours come from CSS classes (media/webview.css) on VS Code's
 * --vscode-charts-* variables, so every theme applies; no inline styles (the page's CSP).
 */
const SVG = 'http://www.w3.org/2000/svg';
const WIDTH = 420;
const HEIGHT = 190;
const MARGIN = { left: 50, right: 58, top: 10, bottom: 26 };
/** Above this many points a series is drawn from each bucket's min and max (spikes stay visible). */
const MAX_BUCKETS = 300;

export interface ChartSeries {
  readonly label: string;
  readonly points: readonly (readonly [number, number])[];
}

export interface ChartOptions {
  readonly id: string;
  readonly title: string;
  /** A fixed y range (for example [0, 1] for accuracies); otherwise the data's. */
  readonly yRange?: readonly [number, number];
}

export function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a === 0) return '0';
  if (a >= 1e5 || a < 1e-3) return v.toExponential(2);
  return String(Number(v.toPrecision(3)));
}

function svg(tag: string, attrs: Record<string, string | number> = {}, text?: string): SVGElement {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

/** A tick with as many digits as its spacing needs: 0.69310 and 0.69320, not 0.693 twice. */
export function formatTick(t: number, step: number, largest = Math.abs(t)): string {
  const a = Math.abs(t);
  const stepPower = Math.floor(Math.log10(step));
  // Exponent form: the same number of digits on every tick of the axis (that of its largest).
  if (a >= 1e5 || (a !== 0 && a < 1e-3)) return t.toExponential(Math.min(6, Math.max(0, Math.floor(Math.log10(largest)) - stepPower)));
  return t.toFixed(Math.min(8, Math.max(0, -stepPower)));
}

/** Round tick values (1, 2 or 5 times a power of ten) covering [min, max]. */
export function niceTicks(min: number, max: number, count = 4): number[] {
  const raw = (max - min) / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw * (1 - 1e-9)) ?? raw;
  const ticks: number[] = [];
  for (let t = Math.ceil(min / step) * step; t <= max + step * 1e-9; t += step) ticks.push(Math.abs(t) < step * 1e-9 ? 0 : t);
  return ticks;
}

function decimate(points: readonly (readonly [number, number])[]): (readonly [number, number])[] {
  if (points.length <= 2 * MAX_BUCKETS) return [...points];
  const out: (readonly [number, number])[] = [];
  const size = points.length / MAX_BUCKETS;
  for (let b = 0; b < MAX_BUCKETS; b++) {
    const bucket = points.slice(Math.floor(b * size), Math.floor((b + 1) * size));
    const finite = bucket.filter((p) => Number.isFinite(p[1]));
    // A non-finite value in a bucket stays, so the line breaks there.
    if (finite.length < bucket.length) out.push(bucket.find((p) => !Number.isFinite(p[1]))!);
    if (!finite.length) continue;
    const lo = finite.reduce((a, p) => (p[1] < a[1] ? p : a));
    const hi = finite.reduce((a, p) => (p[1] > a[1] ? p : a));
    out.push(...(lo[0] <= hi[0] ? [lo, hi] : [hi, lo]));
  }
  const last = points[points.length - 1]!;
  if (out[out.length - 1] !== last) out.push(last);
  return out;
}

export function lineChart(options: ChartOptions, series: readonly ChartSeries[]): HTMLElement {
  const finite = series.flatMap((s) => s.points.filter((p) => Number.isFinite(p[1])));
  const latest = series.map((s) => ({ s, last: [...s.points].reverse().find((p) => Number.isFinite(p[1])), raw: s.points.at(-1) }));
  const described = latest
    .filter((l) => l.raw)
    .map((l) => `${l.s.label} ${formatNumber(l.raw![1])} at step ${l.raw![0]}`)
    .join('; ');
  const root = svg('svg', {
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    role: 'img',
    class: 'chart-svg',
    'data-testid': `chart-${options.id}`,
    'data-points': finite.length,
    'aria-label': `${options.title}: ${described || 'no steps yet'}`,
  });
  const figure = document.createElement('figure');
  figure.className = 'chart';
  const caption = document.createElement('figcaption');
  caption.append(options.title);
  if (series.length > 1) {
    series.forEach((s, i) => {
      const key = document.createElement('span');
      key.className = `legend series-${i}`;
      key.setAttribute('aria-hidden', 'true');
      key.textContent = s.label;
      caption.append(' ', key);
    });
  }
  figure.append(caption, root);

  const plot = { x0: MARGIN.left, x1: WIDTH - MARGIN.right, y0: HEIGHT - MARGIN.bottom, y1: MARGIN.top };
  if (!finite.length) {
    root.append(svg('text', { x: WIDTH / 2, y: HEIGHT / 2, class: 'chart-empty', 'text-anchor': 'middle' }, 'No steps yet'));
    return figure;
  }
  let [xMin, xMax] = [Math.min(...finite.map((p) => p[0])), Math.max(...finite.map((p) => p[0]))];
  if (xMin === xMax) [xMin, xMax] = [xMin - 1, xMax + 1];
  let [yMin, yMax] = options.yRange ?? [Math.min(...finite.map((p) => p[1])), Math.max(...finite.map((p) => p[1]))];
  if (yMin === yMax) [yMin, yMax] = [yMin - (Math.abs(yMin) || 1) * 0.1, yMax + (Math.abs(yMax) || 1) * 0.1];
  else if (!options.yRange) [yMin, yMax] = [yMin - (yMax - yMin) * 0.05, yMax + (yMax - yMin) * 0.05];
  const x = (v: number) => plot.x0 + ((v - xMin) / (xMax - xMin)) * (plot.x1 - plot.x0);
  const y = (v: number) => plot.y0 - ((v - yMin) / (yMax - yMin)) * (plot.y0 - plot.y1);

  const axes = svg('g', { class: 'chart-axes', 'aria-hidden': 'true' });
  const yTicks = niceTicks(yMin, yMax);
  for (const t of yTicks) {
    axes.append(svg('line', { x1: plot.x0, x2: plot.x1, y1: y(t), y2: y(t), class: 'chart-grid' }));
    axes.append(
      svg('text', { x: plot.x0 - 4, y: y(t) + 3, 'text-anchor': 'end' }, formatTick(t, (yTicks[1] ?? t + 1) - yTicks[0]!, Math.max(...yTicks.map(Math.abs)))),
    );
  }
  for (const t of niceTicks(xMin, xMax).filter(Number.isInteger)) {
    axes.append(svg('text', { x: x(t), y: plot.y0 + 14, 'text-anchor': 'middle' }, String(t)));
  }
  axes.append(svg('line', { x1: plot.x0, x2: plot.x1, y1: plot.y0, y2: plot.y0, class: 'chart-axis' }));
  axes.append(svg('line', { x1: plot.x0, x2: plot.x0, y1: plot.y0, y2: plot.y1, class: 'chart-axis' }));
  axes.append(svg('text', { x: plot.x1, y: HEIGHT - 2, 'text-anchor': 'end' }, 'step'));
  root.append(axes);

  const labels: { y: number; text: string; i: number }[] = [];
  series.forEach((s, i) => {
    let d = '';
    let pen = 'M';
    for (const [sx, sy] of decimate(s.points)) {
      if (!Number.isFinite(sy)) {
        pen = 'M';
        continue;
      }
      d += `${pen}${x(sx).toFixed(1)} ${y(sy).toFixed(1)}`;
      pen = 'L';
    }
    root.append(svg('path', { d, class: `chart-line series-${i}`, 'data-series': s.label }));
    const last = latest[i]!.last;
    if (last) {
      root.append(svg('circle', { cx: x(last[0]), cy: y(last[1]), r: 2.5, class: `chart-dot series-${i}` }));
      labels.push({ y: y(last[1]), text: formatNumber(latest[i]!.raw![1]), i });
    }
  });
  // Last-value labels right of the plot, pushed apart so that they never overlap.
  labels.sort((a, b) => a.y - b.y);
  labels.forEach((l, k) => {
    if (k > 0) l.y = Math.max(l.y, labels[k - 1]!.y + 11);
    root.append(svg('text', { x: plot.x1 + 6, y: l.y + 3, class: `chart-value series-${l.i}` }, l.text));
  });
  return figure;
}
