// The runs of the chosen project, newest first, kept current by the projectRuns subscription; runs ticked
// in the table open side by side on the compare page.
import { query, subscribe } from "../api.js";
import { compareHref } from "./compare.js";
import { tagChips } from "./run_labels.js";
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
  id name tags shortId status params createdAt startedAt finishedAt attempt
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
        h("th", { class: "pick" }, h("span", { class: "sr-only" }, "Select")),
        ["Status", "Run", "Workflow", "Params", "Latest metrics", "Created", "Duration"].map((label) =>
          h("th", {}, label),
        ),
      ),
    ),
    body,
  );
  const content = h("div", { class: "card flush" }, h("p", { class: "loading" }, "Loading runs…"));
  const selected = new Set();
  const compare = h("a", { class: "button primary compare-button", hidden: true }, "Compare");
  const clear = h(
    "button",
    { class: "button ghost", hidden: true, onclick: () => (selected.clear(), draw()) },
    "Clear selection",
  );
  replace(
    main,
    h(
      "div",
      { class: "page-head" },
      h("div", {}, h("h1", {}, "Runs"), h("p", { class: "muted" }, `Project ${project.name} · updates live`)),
      h("div", { class: "actions" }, clear, compare, h("a", { class: "button", href: "#/new" }, "Start a run")),
    ),
    content,
  );

  const runs = new Map();
  const draw = () => {
    const ordered = [...runs.values()].sort((a, b) => b.createdAt.localeCompare(a.createdAt));
    replace(body, ordered.map((run) => row(run, selected, draw)));
    compare.hidden = selected.size < 2;
    clear.hidden = selected.size === 0;
    compare.textContent = `Compare ${selected.size} runs`;
    compare.href = compareHref([...selected]);
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

function row(run, selected, changed) {
  const href = `#/runs/${encodeURIComponent(run.id)}`;
  const metrics = run.latestMetrics.map((point) =>
    h("span", { class: "chip" }, h("b", {}, point.key), " ", number(point.value)),
  );
  return h(
    "tr",
    { class: "clickable", dataset: { runId: run.id }, onclick: () => (location.hash = href) },
    h(
      "td",
      { class: "pick", onclick: (event) => event.stopPropagation() },
      h("input", {
        type: "checkbox",
        name: "pick",
        "aria-label": `Select run ${run.shortId ?? shortId(run.id)}`,
        checked: selected.has(run.id),
        onchange: (event) => {
          if (event.target.checked) selected.add(run.id);
          else selected.delete(run.id);
          changed();
        },
      }),
    ),
    h("td", {}, statusBadge(run.status)),
    h(
      "td",
      { class: "run-name" },
      h("a", { href, class: "strong" }, run.name),
      " ",
      h("span", { class: "mono muted" }, run.shortId ?? shortId(run.id)),
      tagChips(run.tags),
    ),
    h("td", { class: "strong" }, run.workflow.name),
    h("td", { class: "params" }, keyValues(changedParams(run), { empty: "defaults" })),
    h("td", {}, metrics.length ? h("span", { class: "chips" }, metrics) : h("span", { class: "muted" }, "—")),
    h("td", { class: "muted nowrap", title: run.createdAt }, timeAgo(run.createdAt)),
    h("td", { class: "nowrap" }, duration(run.startedAt, run.finishedAt)),
  );
}
