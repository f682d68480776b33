// Runs side by side: their params, summaries and latest metrics in one table with the differing values
// marked, and one chart per metric key with every run overlaid. The runs are in the URL
// (#/compare/ID,ID,…), so a comparison can be shared.
import { query, subscribe } from "../api.js";
import { ChartSettings, PALETTE, SeriesChart } from "../chart.js";
import { ACTIVE, compactValue, duration, emptyState, errorBox, h, replace, shortId, statusBadge } from "../dom.js";

const HISTORY_POINTS = 1000;
const RUN_FIELDS = `id name tags shortId status params summary metricKeys createdAt startedAt finishedAt
  workflow { id name } latestMetrics { key step value }`;
const METRICS = `subscription Metrics($runId: ID!, $after: String) {
  runMetrics(runId: $runId, after: $after) { cursor columns }
}`;

export function compareHref(ids) {
  return `#/compare/${ids.map(encodeURIComponent).join(",")}`;
}

function runsQuery(count) {
  const variables = Array.from({ length: count }, (_, i) => `$i${i}: ID!`).join(", ");
  const fields = Array.from({ length: count }, (_, i) => `r${i}: run(id: $i${i}) { ${RUN_FIELDS} }`).join("\n");
  return `query Compare(${variables}) { ${fields} }`;
}

function historyQuery(keys) {
  const variables = keys.map((_, i) => `$k${i}: String!`).join(", ");
  const fields = keys
    .map((_, i) => `m${i}: metrics(key: $k${i}, maxPoints: ${HISTORY_POINTS}) { columns }`)
    .join("\n");
  return `query History($id: ID!, ${variables}) { run(id: $id) { ${fields} } }`;
}

export function render(main, { params: [list] }) {
  const ids = [...new Set(String(list ?? "").split(",").filter(Boolean))];
  const settings = new ChartSettings();
  const charts = new Map();
  const stops = [];
  const table = h("div", { class: "card flush" }, h("p", { class: "loading" }, "Loading runs…"));
  const chartGrid = h("div", { class: "charts" });
  replace(
    main,
    h("nav", { class: "crumbs" }, h("a", { href: "#/" }, "Runs"), " / compare"),
    h(
      "div",
      { class: "page-head" },
      h(
        "div",
        {},
        h("h1", {}, `Comparing ${ids.length} runs`),
        h("p", { class: "muted" }, "This page's address holds the selection: share it to show the same comparison."),
      ),
    ),
    table,
    h("div", { class: "section-head" }, h("h2", {}, "Metrics"), settings.controls()),
    chartGrid,
  );
  if (ids.length < 1) {
    replace(table, emptyState("No runs chosen", "Tick runs in the runs table, then Compare."));
    return null;
  }

  const load = async () => {
    const variables = Object.fromEntries(ids.map((id, i) => [`i${i}`, id]));
    const data = await query(runsQuery(ids.length), variables);
    const runs = ids.map((id, i) => ({ ...(data[`r${i}`] ?? { id, missing: true }), color: PALETTE[i % PALETTE.length] }));
    replace(table, comparisonTable(runs));
    const found = runs.filter((run) => !run.missing);
    const keys = [...new Set(found.flatMap((run) => run.metricKeys))].sort();
    if (!keys.length) replace(chartGrid, emptyState("No metrics", "None of these runs logged a metric yet."));
    const chartOf = (key) => {
      if (!charts.has(key)) {
        const chart = new SeriesChart(key, settings, { key });
        for (const run of found) chart.addSeries(run.id, { label: run.name ?? shortId(run.id), color: run.color });
        if (!charts.size) chartGrid.replaceChildren();
        charts.set(key, chart);
        chartGrid.append(chart.element);
      }
      return charts.get(key);
    };
    keys.forEach(chartOf);
    await Promise.all(
      found.map(async (run) => {
        if (!run.metricKeys.length) return;
        const keyVariables = Object.fromEntries(run.metricKeys.map((key, i) => [`k${i}`, key]));
        const history = await query(historyQuery(run.metricKeys), { id: run.id, ...keyVariables });
        run.metricKeys.forEach((key, i) => chartOf(key).addColumns(run.id, history.run[`m${i}`].columns[key]));
      }),
    );
    // Runs still going keep drawing; points the history already drew are skipped by the charts.
    for (const run of found.filter((candidate) => ACTIVE.has(candidate.status))) {
      stops.push(
        subscribe(
          METRICS,
          { runId: run.id, after: null },
          (batch) => {
            for (const [key, columns] of Object.entries(batch.runMetrics.columns)) {
              chartOf(key).addColumns(run.id, columns);
            }
          },
          {
            resume: (batch, vars) => {
              vars.after = batch.runMetrics.cursor;
            },
          },
        ),
      );
    }
  };
  load().catch((error) => replace(table, errorBox(error)));
  return () => {
    stops.forEach((stop) => stop());
    charts.forEach((chart) => chart.destroy());
  };
}

/** Rows of what the runs have (params, summary, latest metrics), a column per run; a row whose values are not
 * all the same is marked. */
function comparisonTable(runs) {
  const found = runs.filter((run) => !run.missing);
  const latest = (run) => Object.fromEntries((run.latestMetrics ?? []).map((point) => [point.key, point.value]));
  const sections = [
    ["Run", [["workflow", (run) => run.workflow.name], ["tags", (run) => (run.tags ?? []).join(", ")], ["status", (run) => run.status], ["duration", (run) => duration(run.startedAt, run.finishedAt)]]],
    ["Params", keysOf(found, (run) => run.params)],
    ["Summary", keysOf(found, (run) => run.summary)],
    ["Latest metrics", keysOf(found, latest)],
  ];
  const onlyDiffering = h("input", {
    type: "checkbox",
    name: "only-differing",
    onchange: () => element.classList.toggle("only-differing", onlyDiffering.checked),
  });
  const body = h("tbody");
  let differing = 0;
  for (const [title, rows] of sections) {
    if (!rows.length) continue;
    body.append(h("tr", { class: "section" }, h("th", { colspan: String(runs.length + 1) }, title)));
    for (const [label, read] of rows) {
      const values = runs.map((run) => (run.missing ? undefined : read(run)));
      const shown = values.map((value) => (value === undefined || value === null ? "—" : compactValue(value)));
      const differs = new Set(shown).size > 1;
      if (differs && title !== "Run") differing += 1;
      body.append(
        h(
          "tr",
          { class: differs ? "differs" : "same", dataset: { row: `${title}:${label}` } },
          h("th", { class: "mono" }, label, differs ? h("span", { class: "differs-mark", title: "the runs differ here" }, " ≠") : null),
          shown.map((text) => h("td", { class: "mono", title: text }, text)),
        ),
      );
    }
  }
  const element = h(
    "div",
    { class: "compare" },
    h(
      "div",
      { class: "compare-bar" },
      h("span", { class: "muted" }, `${differing} differing values`),
      h("label", { class: "control" }, onlyDiffering, "only what differs"),
    ),
    h(
      "table",
      { class: "table compare-table" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          h("th", {}, ""),
          runs.map((run) =>
            h(
              "th",
              { dataset: { runId: run.id } },
              h("i", { class: "swatch", style: `background:${run.color}` }),
              run.missing
                ? h("span", { class: "muted" }, `${shortId(run.id)} (not found)`)
                : h("a", { href: `#/runs/${encodeURIComponent(run.id)}` }, run.name ?? shortId(run.id)),
              run.missing ? null : h("span", { class: "mono muted" }, ` ${run.shortId}`),
              " ",
              run.missing ? null : statusBadge(run.status),
            ),
          ),
        ),
      ),
      body,
    ),
  );
  return element;
}

function keysOf(runs, object) {
  const keys = [...new Set(runs.flatMap((run) => Object.keys(object(run) ?? {})))].sort();
  return keys.map((key) => [key, (run) => (object(run) ?? {})[key]]);
}
