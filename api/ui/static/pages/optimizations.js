// Optimizations: the project's list, and one optimization's results, best result and charts (a search's in
// search.js, a tuning's in tuning.js).
import { query, subscribe } from "../api.js";
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
import { compareHref } from "./compare.js";
import { drawSearch, searchCache } from "./search.js";
import { followMeasuring, speedupBars, variantLabel } from "./tuning.js";

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
    results(first: 1000) { edges { node { id number lastStep config value state metrics createdAt run { id status } } } }
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
      h("a", { class: "button primary", href: "#/optimize" }, "Start a search"),
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
  const cache = searchCache();
  const clearCharts = () => charts.splice(0).forEach((chart) => chart.destroy());
  let pending = null;
  const load = () =>
    query(DETAIL, { id })
      .then((data) => {
        if (!data.optimization) throw new Error("This optimization does not exist, or is not visible to this key.");
        clearCharts();
        draw(main, data.optimization, charts, cache);
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

function draw(main, optimization, charts, cache) {
  // Results come best first; a trial keeps the number the API and the CLI give it (from 0).
  const results = optimization.results.edges.map((edge, i) => ({ ...edge.node, trial: edge.node.number ?? i }));
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
          ? h(
              "span",
              {},
              h("b", {}, number(optimization.best.value)),
              " ",
              tuning ? variantLabel(optimization.best.config) : keyValues(optimization.best.config),
            )
          : h("span", { class: "muted" }, "no complete result yet"),
      ),
    ),
    tuning
      ? h("h2", {}, "Speedup of each variant")
      : h("div", { class: "section-head" }, h("h2", {}, "Trials"), cache.settings.controls()),
    chartGrid,
    h("div", { class: "section-head" }, h("h2", {}, "Results"), tuning ? null : compareBest(results)),
    resultsTable(results, optimization.best?.id, tuning),
  );
  if (tuning) {
    if (results.length) chartGrid.append(speedupBars(results));
    else {
      // The tuner reports its variants only at its end: until then, follow what it measures.
      const box = h("div", { class: "wide-slot" });
      chartGrid.append(box);
      charts.push({ destroy: followMeasuring(box, optimization.id) });
    }
    return;
  }
  if (!results.length) {
    replace(chartGrid, emptyState("No results yet", "Trials appear here as they start."));
    return;
  }
  charts.push(...drawSearch(chartGrid, optimization, results, cache));
}

/** The best complete trials' runs side by side on the compare page (results come best first). */
function compareBest(results) {
  const best = results.filter((result) => result.state === "COMPLETE" && result.run).slice(0, 3);
  if (best.length < 2) return null;
  const href = compareHref(best.map((result) => result.run.id));
  return h("a", { class: "button compare-best", href }, `Compare the best ${best.length} trials`);
}

function resultsTable(results, bestId, tuning) {
  if (!results.length) return h("div", { class: "card flush" }, emptyState("No results yet"));
  const labels = tuning
    ? ["#", "State", "Throughput", "Speedup", "Variant", "Metrics", "Run"]
    : ["#", "State", "Value", "Config", "Metrics", "Run"];
  return h(
    "div",
    { class: "card flush" },
    h(
      "table",
      { class: "table results" },
      h("thead", {}, h("tr", {}, labels.map((label) => h("th", {}, label)))),
      h(
        "tbody",
        {},
        results.map((result) => {
          const { speedup, ...metrics } = result.metrics ?? {};
          return h(
            "tr",
            {
              class: [result.state === "PRUNED" ? "pruned" : "", result.id === bestId ? "best" : ""].join(" ").trim(),
              dataset: { state: result.state, trial: String(result.trial) },
            },
            h("td", {}, result.trial, result.id === bestId ? h("span", { class: "star", title: "best" }, " ★") : null),
            h("td", {}, statusBadge(result.state)),
            h("td", { class: "strong" }, tuning && typeof result.value === "number" ? `${number(result.value)}/s` : number(result.value)),
            tuning ? h("td", { class: "strong speedup" }, typeof speedup === "number" ? `${number(speedup)}×` : "—") : null,
            h("td", {}, tuning ? variantLabel(result.config) : keyValues(result.config)),
            h("td", {}, keyValues(tuning ? metrics : result.metrics)),
            h(
              "td",
              {},
              result.run
                ? h("a", { href: `#/runs/${encodeURIComponent(result.run.id)}`, class: "mono" }, shortId(result.run.id))
                : "—",
            ),
          );
        }),
      ),
    ),
  );
}
