// Line and scatter charts on uPlot: one metric series of a run, or objective values of an optimization.
import uPlot from "./vendor/uplot/uPlot.esm.js";
import { h, number } from "./dom.js";

export const PALETTE = ["#4f46e5", "#0891b2", "#db2777", "#ea580c", "#16a34a", "#7c3aed", "#ca8a04"];
const AXIS = { stroke: "#64748b", grid: { stroke: "#eef2f7" }, ticks: { stroke: "#e2e8f0" } };
const HEIGHT = 220;
const sparse = (plot) => plot.data[0].length < 30;

function axes(xLabel) {
  return [
    { ...AXIS, label: xLabel, labelSize: 18, labelFont: "12px system-ui", font: "11px system-ui" },
    { ...AXIS, size: 56, font: "11px system-ui", values: (_, ticks) => ticks.map(number) },
  ];
}

/** Keeps ``plot`` as wide as ``box``. */
function fitWidth(plot, box) {
  const observer = new ResizeObserver(() => {
    const width = Math.floor(box.clientWidth);
    if (width > 0 && width !== plot.width) plot.setSize({ width, height: HEIGHT });
  });
  observer.observe(box);
  return observer;
}

/**
 * A run's metric ``key`` over steps, fed with ``add(points)``. Points at or before the last step it holds are
 * ignored, so a downsampled history, a replay and live batches can overlap without drawing twice.
 */
export class MetricChart {
  constructor(key, color) {
    this.key = key;
    this.steps = [];
    this.values = [];
    this.pending = false;
    this.plotBox = h("div", { class: "plot" });
    this.latest = h("span", { class: "latest" }, "—");
    this.element = h(
      "section",
      { class: "card chart", dataset: { key, points: "0" } },
      h("header", {}, h("h3", {}, key), this.latest),
      this.plotBox,
    );
    this.plot = new uPlot(
      {
        width: 400,
        height: HEIGHT,
        legend: { show: false },
        cursor: { points: { size: 6 } },
        scales: { x: { time: false } },
        axes: axes("step"),
        series: [
          {},
          // Dots only while there are few points: a single point has no line to show it.
          { label: key, stroke: color, width: 2, fill: `${color}14`, points: { show: sparse, size: 6, fill: color } },
        ],
      },
      [this.steps, this.values],
      this.plotBox,
    );
    this.observer = fitWidth(this.plot, this.plotBox);
  }

  get lastStep() {
    return this.steps.length ? this.steps[this.steps.length - 1] : -Infinity;
  }

  add(points) {
    for (const point of points) {
      if (point.step <= this.lastStep) continue;
      this.steps.push(point.step);
      this.values.push(point.value);
    }
    this.redraw();
  }

  redraw() {
    if (this.pending) return;
    this.pending = true;
    // One redraw per frame however many batches arrive.
    requestAnimationFrame(() => {
      this.pending = false;
      this.plot.setData([this.steps, this.values]);
      this.element.dataset.points = String(this.steps.length);
      this.element.dataset.lastStep = String(this.lastStep);
      const value = this.values[this.values.length - 1];
      this.latest.textContent = value === undefined ? "—" : `${number(value)} @ step ${this.lastStep}`;
    });
  }

  destroy() {
    this.observer.disconnect();
    this.plot.destroy();
  }
}

/**
 * Points of several named groups against a numeric x, as dots (``lines``: joined). ``groups`` is a list of
 * ``{label, color, points: [[x, y], ...], lines}``; uPlot wants one shared x, so each group gets its own
 * series with gaps (null) at the other groups' x values.
 */
export function scatterChart(title, xLabel, groups) {
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
    { class: "card chart", dataset: { points: String(xs.length) } },
    h("header", {}, h("h3", {}, title), legend(groups)),
    plotBox,
  );
  const plot = new uPlot(
    {
      width: 400,
      height: HEIGHT,
      legend: { show: false },
      scales: { x: { time: false } },
      axes: axes(xLabel),
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
  const observer = fitWidth(plot, plotBox);
  return {
    element,
    destroy() {
      observer.disconnect();
      plot.destroy();
    },
  };
}

function legend(groups) {
  return h(
    "span",
    { class: "legend" },
    groups.map((group) => h("span", {}, h("i", { style: `background:${group.color}` }), group.label)),
  );
}
