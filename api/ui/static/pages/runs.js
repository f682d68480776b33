// The runs of the chosen project, newest first, kept current by the projectRuns subscription.
import { query, subscribe } from "../api.js";
import {
  ACTIVE,
  compactValue,
  duration,
  emptyState,
  errorBox,
  h,
  keyValues,
  number,
  replace,
  shortId,
  statusBadge,
  timeAgo,
} from "../dom.js";

export const RUN_ROW = `fragment RunRow on Run {
  id status params createdAt startedAt finishedAt attempt
  workflow { id name defaults }
  latestMetrics { key step value }
}`;
const RUNS = `query Runs($projectId: ID!) {
  runs(filter: {projectId: $projectId}, first: 100) { edges { node { ...RunRow } } }
}
${RUN_ROW}`;
const PROJECT_RUNS = `subscription ProjectRuns($projectId: ID!) { projectRuns(projectId: $projectId) { ...RunRow } }
${RUN_ROW}`;

export function render(main, { project }) {
  const body = h("tbody");
  const table = h(
    "table",
    { class: "table runs" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ["Status", "Run", "Workflow", "Params", "Latest metrics", "Created", "Duration"].map((label) =>
          h("th", {}, label),
        ),
      ),
    ),
    body,
  );
  const content = h("div", { class: "card flush" }, h("p", { class: "loading" }, "Loading runs…"));
  replace(
    main,
    h(
      "div",
      { class: "page-head" },
      h("div", {}, h("h1", {}, "Runs"), h("p", { class: "muted" }, `Project ${project.name} · updates live`)),
      h("a", { class: "button primary", href: "#/new" }, "Start a run"),
    ),
    content,
  );

  const runs = new Map();
  const draw = () => {
    const ordered = [...runs.values()].sort((a, b) => b.createdAt.localeCompare(a.createdAt));
    replace(body, ordered.map(row));
    if (ordered.length) replace(content, table);
    else
      replace(
        content,
        emptyState("No runs yet", "Start one with the button above, `ptw run digits-mlp`, or startRun."),
      );
  };

  query(RUNS, { projectId: project.id })
    .then((data) => {
      for (const { node } of data.runs.edges) runs.set(node.id, node);
      draw();
    })
    .catch((error) => replace(content, errorBox(error)));

  const stop = subscribe(PROJECT_RUNS, { projectId: project.id }, (data) => {
    const run = data.projectRuns;
    runs.set(run.id, run);
    draw();
  });
  // Durations of active runs keep counting between events.
  const ticker = setInterval(() => {
    if ([...runs.values()].some((run) => ACTIVE.has(run.status))) draw();
  }, 1000);
  return () => {
    stop();
    clearInterval(ticker);
  };
}

/** Params that differ from the workflow's defaults; all of them would crowd the table. */
function changedParams(run) {
  const defaults = run.workflow.defaults ?? {};
  return Object.fromEntries(
    Object.entries(run.params ?? {}).filter(([key, value]) => compactValue(defaults[key]) !== compactValue(value)),
  );
}

function row(run) {
  const href = `#/runs/${encodeURIComponent(run.id)}`;
  const metrics = run.latestMetrics.map((point) =>
    h("span", { class: "chip" }, h("b", {}, point.key), " ", number(point.value)),
  );
  return h(
    "tr",
    { class: "clickable", dataset: { runId: run.id }, onclick: () => (location.hash = href) },
    h("td", {}, statusBadge(run.status)),
    h("td", {}, h("a", { href, class: "mono" }, shortId(run.id))),
    h("td", { class: "strong" }, run.workflow.name),
    h("td", {}, keyValues(changedParams(run), { empty: "defaults" })),
    h("td", {}, metrics.length ? h("span", { class: "chips" }, metrics) : h("span", { class: "muted" }, "—")),
    h("td", { class: "muted nowrap", title: run.createdAt }, timeAgo(run.createdAt)),
    h("td", { class: "nowrap" }, duration(run.startedAt, run.finishedAt)),
  );
}
