// A hyperparameter search's charts: every trial's learning curve on one chart (pruned ones marked where they
// stopped), the objective by trial with the best so far, parallel coordinates over the space, the importance
// of each parameter, and the objective against each parameter (log axes for log-scale ones).
import { query } from "../api.js";
import { ChartSettings, PALETTE, SeriesChart, legend, scatterChart } from "../chart.js";
import { emptyState, h, number, replace } from "../dom.js";
import { parallelCoordinates } from "../parallel.js";

const CURVE_POINTS = 200;
const CURVES = `query Curves($id: ID!, $key: String!) {
  runs(filter: {optimizationId: $id}, first: 1000) {
    edges { node { id metrics(key: $key, maxPoints: ${CURVE_POINTS}) { columns } } }
  }
}`;
const IMPORTANCE = `query Importance($id: ID!) { optimization(id: $id) { id importance } }`;
const PRUNED = "#94a3b8";

/** Draws into ``grid``; returns the charts to destroy when the page is left or redrawn. */
export function drawSearch(grid, optimization, results, cache) {
  const maximize = optimization.direction === "MAXIMIZE";
  const space = optimization.space ?? {};
  const charts = [];
  const add = (chart) => {
    charts.push(chart);
    grid.append(chart.element);
    return chart;
  };
  const curves = add(new SeriesChart(`Learning curves: ${optimization.objective ?? "objective"}`, cache.settings, { key: "learning-curves", autoLegend: false }));
  curves.element.classList.add("wide");
  curves.element.querySelector("header").append(
    legend([
      { label: "complete", color: PALETTE[0] },
      { label: "pruned", color: PRUNED },
      { label: "where pruned", color: "#dc2626" },
    ]),
  );
  fillCurves(curves, optimization, results).catch(() => {});

  grid.append(objectiveByTrial(results, maximize, charts));
  const complete = results.filter((result) => result.state === "COMPLETE").length;
  const names = Object.keys(space);
  const importanceBox = h("div", { class: "slot" });
  const parallelBox = h("div", { class: "wide-slot" });
  grid.append(parallelBox, importanceBox);
  const drawRest = (importance) => {
    const ordered = importance && Object.keys(importance).length ? [...Object.keys(importance), ...names.filter((n) => !(n in importance))] : names;
    replace(parallelBox, parallelCoordinates(space, ordered, results, { objective: optimization.objective ?? "objective", maximize }));
    replace(importanceBox, importanceBars(importance));
  };
  // fANOVA fits a forest: asked again only when another trial has completed.
  if (cache.importanceAt === complete && cache.importance !== undefined) drawRest(cache.importance);
  else {
    drawRest(cache.importance ?? null);
    query(IMPORTANCE, { id: optimization.id })
      .then((data) => {
        cache.importance = data.optimization?.importance ?? {};
        cache.importanceAt = complete;
        if (importanceBox.isConnected) drawRest(cache.importance);
      })
      .catch(() => replace(importanceBox, importanceBars(undefined)));
  }
  for (const name of names) {
    const numeric = results.filter((result) => typeof result.value === "number" && typeof result.config?.[name] === "number");
    if (numeric.length < 2) continue;
    const log = Boolean(space[name]?.log);
    const chart = scatterChart(
      `Objective against ${name}`,
      name,
      [
        { label: "complete", color: PALETTE[1], points: numeric.filter((r) => r.state !== "PRUNED").map((r) => [r.config[name], r.value]) },
        { label: "pruned", color: PRUNED, points: numeric.filter((r) => r.state === "PRUNED").map((r) => [r.config[name], r.value]) },
      ],
      { xLog: log },
    );
    charts.push(chart);
    grid.append(chart.element);
  }
  return charts;
}

/** Each trial's objective as its run logged it, a series per trial; a pruned trial's last point is marked. */
async function fillCurves(chart, optimization, results) {
  const key = optimization.objective;
  if (!key) return;
  const data = await query(CURVES, { id: optimization.id, key });
  const byRun = new Map(data.runs.edges.map(({ node }) => [node.id, node.metrics.columns[key] ?? { steps: [], values: [] }]));
  const trials = [...results].filter((result) => result.run && byRun.has(result.run.id)).sort((a, b) => a.trial - b.trial);
  const stops = [];
  trials.forEach((result, i) => {
    const columns = byRun.get(result.run.id);
    const pruned = result.state === "PRUNED";
    chart.addSeries(`t${result.trial}`, { label: `trial ${result.trial}`, color: pruned ? PRUNED : PALETTE[i % PALETTE.length] });
    chart.addColumns(`t${result.trial}`, columns);
    const last = columns.steps.length - 1;
    if (pruned && last >= 0) stops.push({ step: columns.steps[last], value: columns.values[last] });
  });
  chart.addSeries("pruned", { label: "pruned here", color: "#dc2626", marker: true });
  // One marker series over every pruned trial's last step: where each one stopped.
  const byStep = new Map();
  for (const point of stops) if (!byStep.has(point.step)) byStep.set(point.step, point);
  chart.add("pruned", [...byStep.values()].sort((a, b) => a.step - b.step));
  chart.element.dataset.pruned = String(stops.length);
  chart.element.dataset.trials = String(trials.length);
  if (!trials.length)
    chart.element.append(h("p", { class: "muted overlay" }, `No trial run has logged ${key} yet.`));
}

function objectiveByTrial(results, maximize, charts) {
  const scored = results.filter((result) => typeof result.value === "number");
  const complete = scored.filter((result) => result.state !== "PRUNED").sort((a, b) => a.trial - b.trial);
  const pruned = scored.filter((result) => result.state === "PRUNED");
  let best = null;
  const bestSoFar = complete.map((result) => {
    best = best === null ? result.value : maximize ? Math.max(best, result.value) : Math.min(best, result.value);
    return [result.trial, best];
  });
  const chart = scatterChart("Objective by trial", "trial", [
    { label: "complete", color: PALETTE[0], points: complete.map((r) => [r.trial, r.value]) },
    { label: "pruned", color: PRUNED, points: pruned.map((r) => [r.trial, r.value]) },
    { label: "best so far", color: PALETTE[4], points: bestSoFar, lines: true },
  ]);
  charts.push(chart);
  return chart.element;
}

function importanceBars(importance) {
  const header = h("header", {}, h("h3", {}, "Parameter importance"), h("span", { class: "muted small" }, "fANOVA"));
  if (importance === null) return h("section", { class: "card chart importance" }, header, h("p", { class: "loading" }, "Computing…"));
  if (importance === undefined)
    return h("section", { class: "card chart importance" }, header, emptyState("Unavailable", "The server could not compute it."));
  const entries = Object.entries(importance);
  if (!entries.length)
    return h("section", { class: "card chart importance" }, header, emptyState("Not yet", "Importance needs at least three complete trials."));
  const top = Math.max(...entries.map(([, share]) => share), 1e-9);
  return h(
    "section",
    { class: "card chart importance", dataset: { params: String(entries.length) } },
    header,
    h(
      "div",
      { class: "bars" },
      entries.map(([name, share]) =>
        h(
          "div",
          { class: "bar-row", dataset: { param: name } },
          h("span", { class: "bar-label mono" }, name),
          h("span", { class: "bar-track" }, h("span", { class: "bar faster", style: `width:${(100 * share) / top}%` })),
          h("span", { class: "bar-value" }, `${number(100 * share)}%`),
        ),
      ),
    ),
  );
}

export function searchCache() {
  return { settings: new ChartSettings(), importance: undefined, importanceAt: -1 };
}
