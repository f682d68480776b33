// Optimizations: the project's list, and one optimization's results, best result and charts.
import { query, subscribe } from "../api.js";
import { PALETTE, scatterChart } from "../chart.js";
import {
  clock,
  emptyState,
  errorBox,
  facts,
  h,
  keyValues,
  number,
  replace,
  shortId,
  statusBadge,
  timeAgo,
} from "../dom.js";

const LIST = `query Optimizations($projectId: ID!) {
  optimizations(filter: {projectId: $projectId}, first: 100) {
    edges { node { id kind status objective direction maxTrials createdAt workflow { name } best { value } } }
  }
}`;
const DETAIL = `query Optimization($id: ID!) {
  optimization(id: $id) {
    id kind status objective direction space sampler pruner maxTrials maxParallel error createdAt finishedAt
    workflow { name }
    best { id value config }
    results(first: 1000) { edges { node { id number config value state metrics createdAt run { id status } } } }
  }
}`;
const PROGRESS = `subscription Progress($id: ID!) { optimizationProgress(optimizationId: $id) { optimization { id status } } }`;
const KIND = { HYPERPARAMETER_SEARCH: "Hyperparameter search", PERFORMANCE_TUNING: "Performance tuning" };

export function renderList(main, { project }) {
  const content = h("div", { class: "card flush" }, h("p", { class: "loading" }, "Loading optimizations…"));
  replace(
    main,
    h(
      "div",
      { class: "page-head" },
      h("div", {}, h("h1", {}, "Optimizations"), h("p", { class: "muted" }, `Project ${project.name}`)),
    ),
    content,
  );
  query(LIST, { projectId: project.id })
    .then((data) => {
      const list = data.optimizations.edges.map((edge) => edge.node);
      if (!list.length) {
        replace(
          content,
          emptyState(
            "No optimizations yet",
            "Hyperparameter searches and performance tunings started with `ptw optimize` or startOptimization appear here.",
          ),
        );
        return;
      }
      replace(
        content,
        h(
          "table",
          { class: "table" },
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              ["Status", "Optimization", "Kind", "Workflow", "Objective", "Best", "Created"].map((label) =>
                h("th", {}, label),
              ),
            ),
          ),
          h(
            "tbody",
            {},
            list.map((item) => {
              const href = `#/optimizations/${encodeURIComponent(item.id)}`;
              return h(
                "tr",
                { class: "clickable", dataset: { optimizationId: item.id }, onclick: () => (location.hash = href) },
                h("td", {}, statusBadge(item.status)),
                h("td", {}, h("a", { href, class: "mono" }, shortId(item.id))),
                h("td", {}, KIND[item.kind] ?? item.kind),
                h("td", { class: "strong" }, item.workflow.name),
                h("td", {}, item.objective ? `${item.objective} (${item.direction.toLowerCase()})` : "—"),
                h("td", {}, number(item.best?.value)),
                h("td", { class: "muted" }, timeAgo(item.createdAt)),
              );
            }),
          ),
        ),
      );
    })
    .catch((error) => replace(content, errorBox(error)));
}

export function renderDetail(main, { params: [id] }) {
  const charts = [];
  const clearCharts = () => charts.splice(0).forEach((chart) => chart.destroy());
  let pending = null;
  const load = () =>
    query(DETAIL, { id })
      .then((data) => {
        if (!data.optimization) throw new Error("This optimization does not exist, or is not visible to this key.");
        clearCharts();
        draw(main, data.optimization, charts);
      })
      .catch((error) => replace(main, errorBox(error)));
  load();
  // Each event reloads the whole optimization, at most once a second: results change a few times a minute.
  const stop = subscribe(PROGRESS, { id }, () => {
    pending ??= setTimeout(() => {
      pending = null;
      load();
    }, 1000);
  });
  return () => {
    stop();
    clearTimeout(pending);
    clearCharts();
  };
}

function draw(main, optimization, charts) {
  // Results come best first; a trial keeps its own number (from 1), in the table and on the charts.
  const results = optimization.results.edges.map((edge, i) => ({ ...edge.node, trial: (edge.node.number ?? i) + 1 }));
  const maximize = optimization.direction === "MAXIMIZE";
  const tuning = optimization.kind === "PERFORMANCE_TUNING";
  const chartGrid = h("div", { class: "charts" });
  replace(
    main,
    h("nav", { class: "crumbs" }, h("a", { href: "#/optimizations" }, "Optimizations"), " / ", shortId(optimization.id)),
    h(
      "div",
      { class: "page-head" },
      h(
        "div",
        {},
        h("h1", {}, `${KIND[optimization.kind] ?? optimization.kind} of ${optimization.workflow.name}`),
        h("p", { class: "muted" }, optimization.objective ? `${maximize ? "Maximize" : "Minimize"} ${optimization.objective}` : ""),
      ),
      statusBadge(optimization.status),
    ),
    h(
      "div",
      { class: "card" },
      optimization.error ? h("div", { class: "alert" }, optimization.error) : null,
      facts([
        ["Results", `${results.length}${optimization.maxTrials ? ` of ${optimization.maxTrials}` : ""}`],
        ["Parallel", optimization.maxParallel ?? "—"],
        ["Sampler", optimization.sampler],
        ["Pruner", optimization.pruner],
        ["Created", clock(optimization.createdAt)],
        ["Finished", clock(optimization.finishedAt)],
      ]),
      h("div", { class: "kv-row" }, h("span", { class: "label" }, "Space"), keyValues(optimization.space)),
      h(
        "div",
        { class: "kv-row best" },
        h("span", { class: "label" }, "Best"),
        optimization.best
          ? h("span", {}, h("b", {}, number(optimization.best.value)), " ", keyValues(optimization.best.config))
          : h("span", { class: "muted" }, "no complete result yet"),
      ),
    ),
    h("h2", {}, tuning ? "Speedup of each variant" : "Trials"),
    chartGrid,
    h("h2", {}, "Results"),
    resultsTable(results, optimization.best?.id),
  );
  if (!results.length) {
    replace(chartGrid, emptyState("No results yet", "Trials appear here as they complete."));
    return;
  }
  if (tuning) chartGrid.append(speedupBars(results));
  else {
    for (const chart of searchCharts(results, maximize)) {
      charts.push(chart);
      chartGrid.append(chart.element);
    }
  }
}

/** Objective by trial with the best so far, then the objective against each numeric parameter. */
function searchCharts(results, maximize) {
  const scored = results.filter((result) => typeof result.value === "number");
  const complete = scored.filter((result) => result.state !== "PRUNED").sort((a, b) => a.trial - b.trial);
  const pruned = scored.filter((result) => result.state === "PRUNED");
  let best = null;
  const bestSoFar = complete.map((result) => {
    best = best === null ? result.value : maximize ? Math.max(best, result.value) : Math.min(best, result.value);
    return [result.trial, best];
  });
  const charts = [
    scatterChart("Objective by trial", "trial", [
      { label: "complete", color: PALETTE[0], points: complete.map((r) => [r.trial, r.value]) },
      { label: "pruned", color: "#94a3b8", points: pruned.map((r) => [r.trial, r.value]) },
      { label: "best so far", color: PALETTE[4], points: bestSoFar, lines: true },
    ]),
  ];
  const names = [...new Set(scored.flatMap((result) => Object.keys(result.config ?? {})))];
  for (const name of names) {
    const numeric = scored.filter((result) => typeof result.config?.[name] === "number");
    if (numeric.length < 2) continue;
    charts.push(
      scatterChart(`Objective against ${name}`, name, [
        {
          label: "complete",
          color: PALETTE[1],
          points: numeric.filter((r) => r.state !== "PRUNED").map((r) => [r.config[name], r.value]),
        },
        {
          label: "pruned",
          color: "#94a3b8",
          points: numeric.filter((r) => r.state === "PRUNED").map((r) => [r.config[name], r.value]),
        },
      ]),
    );
  }
  return charts;
}

/** Horizontal bars of ``metrics.speedup``, fastest first; plain elements read better than a canvas here. */
function speedupBars(results) {
  const measured = results
    .filter((result) => typeof result.metrics?.speedup === "number")
    .sort((a, b) => b.metrics.speedup - a.metrics.speedup);
  if (!measured.length) return emptyState("No speedups measured", "Variants report metrics.speedup when measured.");
  const top = Math.max(...measured.map((result) => result.metrics.speedup), 1);
  return h(
    "section",
    { class: "card bars", dataset: { points: String(measured.length) } },
    measured.map((result) =>
      h(
        "div",
        { class: "bar-row" },
        h("span", { class: "bar-label" }, keyValues(result.config)),
        h(
          "span",
          { class: "bar-track" },
          h("span", {
            class: result.metrics.speedup >= 1 ? "bar faster" : "bar slower",
            style: `width:${(100 * result.metrics.speedup) / top}%`,
          }),
          h("span", { class: "baseline", style: `left:${100 / top}%` }),
        ),
        h("span", { class: "bar-value" }, `${number(result.metrics.speedup)}×`),
      ),
    ),
  );
}

function resultsTable(results, bestId) {
  if (!results.length) return h("div", { class: "card flush" }, emptyState("No results yet"));
  return h(
    "div",
    { class: "card flush" },
    h(
      "table",
      { class: "table results" },
      h("thead", {}, h("tr", {}, ["#", "State", "Value", "Config", "Metrics", "Run"].map((label) => h("th", {}, label)))),
      h(
        "tbody",
        {},
        results.map((result) =>
          h(
            "tr",
            {
              class: [result.state === "PRUNED" ? "pruned" : "", result.id === bestId ? "best" : ""].join(" ").trim(),
              dataset: { state: result.state },
            },
            h("td", {}, result.trial, result.id === bestId ? h("span", { class: "star", title: "best" }, " ★") : null),
            h("td", {}, statusBadge(result.state)),
            h("td", { class: "strong" }, number(result.value)),
            h("td", {}, keyValues(result.config)),
            h("td", {}, keyValues(result.metrics)),
            h(
              "td",
              {},
              result.run
                ? h("a", { href: `#/runs/${encodeURIComponent(result.run.id)}`, class: "mono" }, shortId(result.run.id))
                : "—",
            ),
          ),
        ),
      ),
    ),
  );
}
