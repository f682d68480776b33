// Line and scatter charts on uPlot: metric series of one or several runs (with a hover readout, a log scale,
// smoothing and x by step or by time), and points of groups such as the trials of an optimization.
import uPlot from "./vendor/uplot/uPlot.esm.js";
import { h, number, replace } from "./dom.js";

export const PALETTE = ["#4f46e5", "#0891b2", "#db2777", "#ea580c", "#16a34a", "#7c3aed", "#ca8a04"];
const AXIS = { stroke: "#64748b", grid: { stroke: "#eef2f7" }, ticks: { stroke: "#e2e8f0" } };
const HEIGHT = 220;
const READOUT_SERIES = 6;

// A log axis leaves the ticks between decades unlabelled (null).
const tick = (value) => (value === null || value === undefined ? "" : number(value));

function axes(xLabel) {
  return [
    {
      ...AXIS,
      label: xLabel,
      labelSize: 18,
      labelFont: "12px system-ui",
      font: "11px system-ui",
      values: (_, ticks) => ticks.map(tick),
    },
    { ...AXIS, size: 60, font: "11px system-ui", values: (_, ticks) => ticks.map(tick) },
  ];
}

/** Keeps ``plot()`` as wide as ``box``. */
function fitWidth(plot, box) {
  const observer = new ResizeObserver(() => {
    const width = Math.floor(box.clientWidth);
    const current = plot(); // null until the first frame draws it
    if (current && width > 0 && width !== current.width) current.setSize({ width, height: HEIGHT });
  });
  observer.observe(box);
  return observer;
}

/** Debiased exponential moving average (TensorBoard's smoothing); ``weight`` 0 leaves values as they are. */
export function smooth(values, weight) {
  if (!weight) return values;
  let last = 0;
  let count = 0;
  return values.map((value) => {
    if (value === null || !Number.isFinite(value)) return value;
    last = last * weight + (1 - weight) * value;
    count += 1;
    return last / (1 - weight ** count);
  });
}

/**
 * How the charts of one page are drawn: ``log`` (y on a log scale), ``smoothing`` (0 to 0.99) and ``x``
 * ("step", or "time": seconds since the series' first point). Charts follow every change.
 */
export class ChartSettings {
  constructor(initial = {}) {
    Object.assign(this, { log: false, smoothing: 0, x: "step" }, initial);
    this.listeners = new Set();
  }

  onChange(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  set(changes) {
    Object.assign(this, changes);
    this.listeners.forEach((listener) => listener(this));
  }

  /** The toolbar that changes them. */
  controls({ time = true } = {}) {
    const shown = h("output", { class: "mono" }, this.smoothing.toFixed(2));
    const slider = h("input", {
      type: "range",
      name: "smoothing",
      min: "0",
      max: "0.99",
      step: "0.01",
      value: String(this.smoothing),
      oninput: () => {
        shown.textContent = Number(slider.value).toFixed(2);
        this.set({ smoothing: Number(slider.value) });
      },
    });
    const log = h("input", {
      type: "checkbox",
      name: "log-scale",
      checked: this.log,
      onchange: () => this.set({ log: log.checked }),
    });
    const x = h(
      "select",
      { name: "x-axis", "aria-label": "x axis", onchange: () => this.set({ x: x.value }) },
      h("option", { value: "step", selected: this.x === "step" }, "x: step"),
      time ? h("option", { value: "time", selected: this.x === "time" }, "x: time") : null,
    );
    return h(
      "div",
      { class: "chart-controls" },
      h("label", { class: "control" }, log, "log scale"),
      h("label", { class: "control" }, "smoothing", slider, shown),
      x,
    );
  }
}

/**
 * One metric over steps (or time) for one or more series, fed with ``add(id, points)``. Points at or before
 * the last step a series holds are ignored, so a downsampled history, a replay and live batches can overlap
 * without drawing twice. ``marker`` series are drawn as dots only (where a pruned trial stopped).
 */
export class SeriesChart {
  constructor(title, settings = new ChartSettings(), { key = title, xLabel = null, autoLegend = true } = {}) {
    this.title = title;
    this.autoLegend = autoLegend;
    this.settings = settings;
    this.xLabel = xLabel;
    this.series = new Map();
    this.pending = false;
    this.plot = null;
    this.plotBox = h("div", { class: "plot" });
    this.latest = h("span", { class: "latest" });
    this.key = h("span", { class: "legend" });
    this.readout = h("div", { class: "readout mono" }, "\u00a0");
    this.element = h(
      "section",
      { class: "card chart", dataset: { key, points: "0" } },
      h("header", {}, h("h3", {}, title), this.latest, this.key),
      this.plotBox,
      this.readout,
    );
    this.unfollow = settings.onChange(() => this.rebuild());
    this.observer = fitWidth(() => this.plot, this.plotBox);
  }

  addSeries(id, { label = id, color = PALETTE[this.series.size % PALETTE.length], marker = false } = {}) {
    if (!this.series.has(id)) {
      this.series.set(id, { id, label, color, marker, steps: [], times: [], values: [] });
      this.stale = true; // the plot is made again for its new series, once, on the next frame
      this.redraw();
    }
    return this.series.get(id);
  }

  /** ``points``: ``{step, value, timestamp?}`` in step order. */
  add(id, points) {
    const series = this.series.get(id) ?? this.addSeries(id);
    for (const point of points) {
      const last = series.steps.length ? series.steps[series.steps.length - 1] : -Infinity;
      if (point.step <= last) continue;
      series.steps.push(point.step);
      series.values.push(point.value);
      series.times.push(point.timestamp ? new Date(point.timestamp).getTime() / 1000 : null);
    }
    this.redraw();
  }

  /** ``columns``: ``{steps, values, timestamps}`` (epoch seconds), as MetricSeries.columns gives a key. */
  addColumns(id, columns) {
    const series = this.series.get(id) ?? this.addSeries(id);
    const { steps = [], values = [], timestamps = [] } = columns ?? {};
    for (let i = 0; i < steps.length; i += 1) {
      const last = series.steps.length ? series.steps[series.steps.length - 1] : -Infinity;
      if (steps[i] <= last) continue;
      series.steps.push(steps[i]);
      series.values.push(values[i]);
      series.times.push(timestamps[i] ?? null);
    }
    this.redraw();
  }

  get lastStep() {
    const lasts = [...this.series.values()].map((s) => (s.steps.length ? s.steps[s.steps.length - 1] : -Infinity));
    return Math.max(-Infinity, ...lasts);
  }

  byTime() {
    return this.settings.x === "time" && [...this.series.values()].every((s) => s.times.every((t) => t !== null));
  }

  /** Each series as ``[xs, raw, shown]``: x by step or seconds since its first point, y smoothed and, on a
   * log scale, without the values a log axis cannot place. */
  tables() {
    const byTime = this.byTime();
    return [...this.series.values()].map((s) => {
      const xs = byTime ? s.times.map((t) => t - s.times[0]) : s.steps;
      const positive = (v) => (this.settings.log && !(v > 0) ? null : v);
      const raw = s.values.map(positive);
      const shown = s.marker ? raw : smooth(s.values, this.settings.smoothing).map(positive);
      return [xs, raw, shown];
    });
  }

  data() {
    const tables = this.tables();
    if (!tables.length) return [[]];
    // uPlot draws series over one shared x: join aligns them, with gaps where a series has no point.
    return tables.length === 1 ? tables[0] : uPlot.join(tables);
  }

  options() {
    const smoothing = this.settings.smoothing > 0;
    const series = [...this.series.values()].flatMap((s) => {
      if (s.marker)
        return [
          { label: s.label, stroke: s.color, width: 0, paths: () => null, points: { show: true, size: 9, fill: s.color } },
          { label: `${s.label} (shown)`, show: false },
        ];
      const few = (u) => u.data[0].length < 30;
      return [
        // The raw values stay faintly behind their smoothed line.
        { label: `${s.label} (raw)`, stroke: `${s.color}40`, width: 1, show: smoothing, spanGaps: true, points: { show: false } },
        { label: s.label, stroke: s.color, width: 2, spanGaps: true, points: { show: few, size: 5, fill: s.color } },
      ];
    });
    return {
      width: Math.max(300, Math.floor(this.plotBox.clientWidth) || 400),
      height: HEIGHT,
      legend: { show: false },
      cursor: { points: { size: 6 } },
      scales: { x: { time: false }, y: this.settings.log ? { distr: 3, log: 10 } : {} },
      axes: axes(this.xLabel ?? (this.byTime() ? "seconds since start" : "step")),
      series: [{}, ...series],
      hooks: { setCursor: [(u) => this.showReadout(u)] },
    };
  }

  rebuild() {
    this.stale = false;
    this.plot?.destroy();
    this.plot = new uPlot(this.options(), this.data(), this.plotBox);
    this.element.dataset.scale = this.settings.log ? "log" : "linear";
    this.element.dataset.x = this.byTime() ? "time" : "step";
    this.element.dataset.smoothing = String(this.settings.smoothing);
    this.drawn();
  }

  redraw() {
    if (this.pending) return;
    this.pending = true;
    // One redraw per frame however many batches arrive.
    requestAnimationFrame(() => {
      this.pending = false;
      if (!this.plot || this.stale) return this.rebuild();
      this.plot.setData(this.data());
      this.drawn();
    });
  }

  drawn() {
    const counts = [...this.series.values()].map((s) => s.steps.length);
    this.element.dataset.points = String(Math.max(0, ...counts));
    this.element.dataset.series = String(this.series.size);
    this.element.dataset.lastStep = String(this.lastStep);
    if (this.series.size === 1) {
      const [only] = this.series.values();
      const value = only.values[only.values.length - 1];
      this.latest.textContent = value === undefined ? "—" : `${number(value)} @ step ${this.lastStep}`;
    } else this.latest.textContent = "";
    const named = [...this.series.values()].filter((s) => !s.marker || s.steps.length);
    if (this.autoLegend && this.series.size > 1 && named.length <= 8 && this.key.childElementCount !== named.length)
      replace(this.key, [...legend(named).childNodes]);
  }

  /** Under the chart: x at the cursor and each series' value there (the nearest point it has). */
  showReadout(u) {
    const index = u.cursor.idx;
    if (index === null || index === undefined) {
      this.readout.textContent = "\u00a0";
      return;
    }
    const x = u.data[0][index];
    const list = [...this.series.values()];
    const values = [];
    list.forEach((s, i) => {
      const column = u.data[2 * i + 2];
      if (!column) return;
      const value = nearest(column, index);
      if (value !== null) values.push([s, value]);
    });
    const shown = values.slice(0, READOUT_SERIES);
    const xText = this.byTime() ? `${number(x)} s` : `${this.xLabel ?? "step"} ${number(x)}`;
    replace(
      this.readout,
      h("b", {}, xText),
      shown.map(([s, value]) =>
        h("span", { class: "reading" }, h("i", { style: `background:${s.color}` }), list.length > 1 ? `${s.label} ` : "", number(value)),
      ),
      values.length > shown.length ? h("span", { class: "muted" }, ` +${values.length - shown.length} more`) : null,
    );
  }

  destroy() {
    this.unfollow();
    this.observer.disconnect();
    this.plot?.destroy();
  }
}

/** The value at ``index`` or, in a gap, the closest one before it. */
function nearest(column, index) {
  for (let i = index; i >= 0 && index - i < 256; i -= 1) if (column[i] !== null && column[i] !== undefined) return column[i];
  return null;
}

/** One run's metric ``key``: a SeriesChart with one series. */
export class MetricChart extends SeriesChart {
  constructor(key, color, settings) {
    super(key, settings, { key });
    this.addSeries("run", { label: key, color });
  }

  addColumns(columns) {
    super.addColumns("run", columns);
  }
}

/**
 * Points of several named groups against a numeric x, as dots (``lines``: joined). ``groups`` is a list of
 * ``{label, color, points: [[x, y], ...], lines}``; uPlot wants one shared x, so each group gets its own
 * series with gaps (null) at the other groups' x values. ``xLog``: x on a log scale (a log-scale parameter).
 */
export function scatterChart(title, xLabel, groups, { xLog = false } = {}) {
  const xs = [...new Set(groups.flatMap((group) => group.points.map(([x]) => x)))].sort((a, b) => a - b);
  const index = new Map(xs.map((x, i) => [x, i]));
  const columns = groups.map((group) => {
    const column = new Array(xs.length).fill(null);
    for (const [x, y] of group.points) column[index.get(x)] = y;
    return column;
  });
  const plotBox = h("div", { class: "plot" });
  const element = h(
    "section",
    { class: "card chart", dataset: { points: String(xs.length), xScale: xLog ? "log" : "linear" } },
    h("header", {}, h("h3", {}, title), legend(groups)),
    plotBox,
  );
  const plot = new uPlot(
    {
      width: 400,
      height: HEIGHT,
      legend: { show: false },
      scales: { x: xLog ? { time: false, distr: 3, log: 10 } : { time: false } },
      axes: axes(xLog ? `${xLabel} (log)` : xLabel),
      series: [
        {},
        ...groups.map((group) => ({
          label: group.label,
          stroke: group.color,
          width: group.lines ? 2 : 0,
          spanGaps: true,
          paths: group.lines ? undefined : () => null,
          points: group.lines
            ? { show: false }
            : { show: true, size: 9, width: 1, fill: `${group.color}cc`, stroke: group.color },
        })),
      ],
    },
    [xs, ...columns],
    plotBox,
  );
  const observer = fitWidth(() => plot, plotBox);
  return {
    element,
    destroy() {
      observer.disconnect();
      plot.destroy();
    },
  };
}

export function legend(groups) {
  return h(
    "span",
    { class: "legend" },
    groups.map((group) => h("span", {}, h("i", { style: `background:${group.color}` }), group.label)),
  );
}
