// Parallel coordinates of a search: an axis per parameter of its space and one for the objective, a line
// per trial. Log-scale parameters get log axes, choices evenly spaced ones. Plain SVG: uPlot draws no such
// chart, and a few hundred polylines are cheap.
import { h, number } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 1000;
const HEIGHT = 320;
const TOP = 42;
const BOTTOM = 26;
const SIDE = 60;

function svg(tag, attrs = {}, ...children) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) if (value !== undefined && value !== null) element.setAttribute(name, value);
  for (const child of children.flat()) if (child) element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return element;
}

/** Where a value lies on an axis, from 0 (bottom) to 1 (top), and the ticks to label it with. */
function axisOf(name, spec, values) {
  if (spec?.type === "categorical") {
    const choices = spec.choices.map((choice) => JSON.stringify(choice));
    const at = (value) => (choices.length === 1 ? 0.5 : choices.indexOf(JSON.stringify(value)) / (choices.length - 1));
    return { name, log: false, at, ticks: spec.choices.map((choice) => [at(choice), String(choice)]) };
  }
  const finite = values.filter((value) => typeof value === "number" && Number.isFinite(value));
  let low = spec?.low ?? Math.min(...finite);
  let high = spec?.high ?? Math.max(...finite);
  const log = Boolean(spec?.log) && low > 0;
  if (!Number.isFinite(low) || !Number.isFinite(high)) [low, high] = [0, 1];
  const f = log ? Math.log10 : (x) => x;
  const span = f(high) - f(low) || 1;
  const at = (value) => (typeof value === "number" ? Math.min(1, Math.max(0, (f(value) - f(low)) / span)) : null);
  let ticks;
  if (log) {
    ticks = [];
    for (let p = Math.ceil(Math.log10(low)); p <= Math.floor(Math.log10(high)); p += 1) ticks.push([at(10 ** p), number(10 ** p)]);
    if (ticks.length < 2) ticks = [[0, number(low)], [1, number(high)]];
  } else {
    ticks = [0, 0.5, 1].map((t) => [t, number(low + t * (high - low))]);
  }
  return { name, log, at, ticks };
}

/**
 * ``trials``: ``[{trial, config, value, state}]``; ``space``: the search's space; ``names``: the parameters in
 * the order to draw them. Complete trials are coloured by their objective (dark: best), pruned ones grey.
 */
export function parallelCoordinates(space, names, trials, { objective = "objective", maximize = true } = {}) {
  const scored = trials.filter((trial) => typeof trial.value === "number");
  const axes = [
    ...names.map((name) => axisOf(name, space[name], scored.map((trial) => trial.config?.[name]))),
    { ...axisOf(objective, null, scored.map((trial) => trial.value)), objective: true },
  ];
  const gap = (WIDTH - 2 * SIDE) / Math.max(1, axes.length - 1);
  const x = (i) => SIDE + i * gap;
  const y = (t) => TOP + (1 - t) * (HEIGHT - TOP - BOTTOM);
  const values = scored.filter((trial) => trial.state === "COMPLETE").map((trial) => trial.value);
  const worst = maximize ? Math.min(...values) : Math.max(...values);
  const best = maximize ? Math.max(...values) : Math.min(...values);
  const goodness = (value) => (best === worst ? 1 : (value - worst) / (best - worst));
  const lines = [...scored]
    // Pruned first and the best last, so the best lie on top.
    .sort((a, b) => (b.state === "PRUNED") - (a.state === "PRUNED") || goodness(a.value) - goodness(b.value))
    .map((trial) => {
      const points = axes
        .map((axis, i) => [x(i), axis.objective ? axis.at(trial.value) : axis.at(trial.config?.[axis.name])])
        .filter(([, t]) => t !== null && t !== undefined && !Number.isNaN(t))
        .map(([px, t]) => `${px.toFixed(1)},${y(t).toFixed(1)}`)
        .join(" ");
      const pruned = trial.state === "PRUNED";
      const g = goodness(trial.value);
      const colour = pruned ? "#cbd5e1" : `hsl(${245 - 60 * (1 - g)} ${40 + 45 * g}% ${78 - 40 * g}%)`;
      return svg(
        "polyline",
        {
          points,
          fill: "none",
          stroke: colour,
          "stroke-width": pruned ? 1.2 : 1.8,
          "stroke-dasharray": pruned ? "4 3" : null,
          class: pruned ? "trial pruned" : "trial",
          "data-trial": String(trial.trial),
        },
        svg("title", {}, `trial ${trial.trial} (${trial.state.toLowerCase()}): ${objective} ${number(trial.value)}`),
      );
    });
  const axisElements = axes.map((axis, i) =>
    svg(
      "g",
      { class: `axis${axis.log ? " log" : ""}`, "data-axis": axis.name },
      svg("line", { x1: x(i), x2: x(i), y1: y(0), y2: y(1), stroke: "#64748b", "stroke-width": 1 }),
      svg("text", { x: x(i), y: 16, "text-anchor": "middle", class: "axis-name" }, axis.name),
      svg("text", { x: x(i), y: 30, "text-anchor": "middle", class: "axis-scale" }, axis.log ? "log" : axis.objective ? (maximize ? "max" : "min") : ""),
      axis.ticks.map(([t, label]) =>
        svg(
          "g",
          {},
          svg("line", { x1: x(i) - 4, x2: x(i), y1: y(t), y2: y(t), stroke: "#64748b" }),
          svg("text", { x: x(i) - 7, y: y(t) + 4, "text-anchor": "end", class: "tick" }, label),
        ),
      ),
    ),
  );
  const drawing = svg(
    "svg",
    { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, class: "parallel-svg", role: "img", "aria-label": "parallel coordinates" },
    lines,
    axisElements,
  );
  return h(
    "section",
    { class: "card chart wide parallel", dataset: { lines: String(lines.length), axes: String(axes.length) } },
    h("header", {}, h("h3", {}, "Parallel coordinates"), h("span", { class: "muted small" }, "a line per trial; dashed: pruned")),
    drawing,
  );
}
