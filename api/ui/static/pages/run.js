// One run: live charts of its metrics, its events and output (stored lines first), its attempts and
// artifacts, and a cancel button.
import { query, subscribe } from "../api.js";
import { ChartSettings, MetricChart, PALETTE } from "../chart.js";
import { runLabels } from "./run_labels.js";
import { STORY_FIELDS, artifactsTable, attemptsTable } from "./run_story.js";
import {
  ACTIVE,
  clock,
  duration,
  emptyState,
  errorBox,
  facts,
  h,
  keyValues,
  replace,
  shortId,
  statusBadge,
} from "../dom.js";

const RUN = `query Run($id: ID!) {
  run(id: $id) {
    id name tags notes shortId status params attempt device executor createdAt startedAt finishedAt error summary
    metricKeys
    workflow { id name }
    project { id name }
    optimizationResult { id }
    ${STORY_FIELDS}
  }
}`;
const STORY = `query Story($id: ID!) { run(id: $id) { id ${STORY_FIELDS} } }`;
const CANCEL = `mutation Cancel($id: ID!) { cancelRun(id: $id) { id status } }`;
const METRICS = `subscription Metrics($runId: ID!, $after: String) {
  runMetrics(runId: $runId, after: $after) { cursor columns }
}`;
const EVENTS = `subscription Events($runId: ID!) {
  runEvents(runId: $runId) {
    kind status message stream at
    run { id status attempt device executor startedAt finishedAt error summary }
  }
}`;
const HISTORY_POINTS = 1000;
// Artifacts have no event of their own: a live run's list is read again this often.
const ARTIFACT_REFRESH_MS = 3000;
const MAX_LOG_LINES = 400;

/** One query for the downsampled history of every key (aliases m0, m1, …). */
function historyQuery(keys) {
  const variables = keys.map((_, i) => `$k${i}: String!`).join(", ");
  const fields = keys
    .map((_, i) => `m${i}: metrics(key: $k${i}, maxPoints: ${HISTORY_POINTS}) { key total columns }`)
    .join("\n");
  return `query History($id: ID!, ${variables}) { run(id: $id) { ${fields} } }`;
}

export function render(main, { params: [runId] }) {
  let run = null;
  const charts = new Map();
  const settings = new ChartSettings();
  const stops = [];
  const head = h("div", { class: "page-head" });
  const overview = h("div", { class: "card" });
  const chartGrid = h("div", { class: "charts" }, h("p", { class: "loading" }, "Loading metrics…"));
  const log = h("ol", { class: "log" });
  const artifacts = h("div", { class: "card flush" });
  const attempts = h("div", { class: "card flush" });
  replace(
    main,
    h("nav", { class: "crumbs" }, h("a", { href: "#/" }, "Runs"), " / ", shortId(runId)),
    head,
    overview,
    h("div", { class: "section-head" }, h("h2", {}, "Metrics"), settings.controls()),
    chartGrid,
    h(
      "div",
      { class: "columns" },
      h("section", {}, h("h2", {}, "Events"), h("div", { class: "card flush" }, log)),
      h("section", {}, h("h2", {}, "Artifacts"), artifacts),
    ),
    h("h2", {}, "Attempts"),
    attempts,
  );

  const chartOf = (key) => {
    if (!charts.has(key)) {
      const chart = new MetricChart(key, PALETTE[charts.size % PALETTE.length], settings);
      charts.set(key, chart);
      if (charts.size === 1) chartGrid.replaceChildren();
      chartGrid.append(chart.element);
    }
    return charts.get(key);
  };

  let cancelling = false;
  let confirming = false;
  const confirmCancel = (yes) => {
    confirming = yes;
    update({});
  };
  const cancel = async () => {
    confirming = false;
    cancelling = true;
    update({});
    try {
      const data = await query(CANCEL, { id: runId });
      update({ status: data.cancelRun.status });
    } catch (error) {
      overview.prepend(errorBox(error));
    } finally {
      cancelling = false;
      update({});
    }
  };
  const elapsed = h("span");
  // Made again only when the labels change, so an edit in progress survives status updates.
  let labels = null;
  let labelsShown = null;
  const labelsOf = (current) => {
    const shown = JSON.stringify([current.name, current.tags, current.notes]);
    if (shown !== labelsShown) {
      labelsShown = shown;
      labels = runLabels(current, (changes) => update(changes));
    }
    return labels;
  };

  const update = (changes) => {
    run = { ...run, ...changes };
    const cancellable = ACTIVE.has(run.status) && run.status !== "CANCELLING";
    elapsed.textContent = duration(run.startedAt, run.finishedAt);
    replace(
      head,
      h(
        "div",
        {},
        h("h1", {}, run.name ?? run.workflow.name, " ", h("span", { class: "mono muted short-id" }, run.shortId ?? shortId(run.id))),
        h("p", { class: "muted" }, `${run.workflow.name} · project ${run.project.name}`),
      ),
      h(
        "div",
        { class: "actions" },
        statusBadge(run.status),
        cancellable && !confirming
          ? h("button", { class: "button danger", disabled: cancelling, onclick: () => confirmCancel(true) }, "Cancel run")
          : null,
        cancellable && confirming
          ? h(
              "span",
              { class: "confirm", role: "alertdialog", "aria-label": "Cancel this run?" },
              "Stop this run?",
              h("button", { class: "button danger", onclick: cancel }, "Yes, cancel run"),
              h("button", { class: "button ghost", onclick: () => confirmCancel(false) }, "Keep running"),
            )
          : null,
      ),
    );
    replace(
      overview,
      run.error ? h("div", { class: "alert" }, run.error) : null,
      facts([
        ["Status", run.status],
        ["Attempt", String(run.attempt)],
        ["Device", run.device],
        ["Executor", run.executor],
        ["Created", clock(run.createdAt)],
        ["Started", clock(run.startedAt)],
        ["Finished", clock(run.finishedAt)],
        ["Duration", elapsed],
      ]),
      h("div", { class: "kv-row" }, h("span", { class: "label" }, "Params"), keyValues(run.params)),
      run.summary
        ? h("div", { class: "kv-row" }, h("span", { class: "label" }, "Summary"), keyValues(run.summary))
        : null,
      labelsOf(run),
    );
  };

  const drawStory = (story) => {
    replace(artifacts, artifactsTable(story.artifacts));
    replace(attempts, attemptsTable(story.attempts));
  };

  const refreshStory = () =>
    query(STORY, { id: runId })
      .then((data) => drawStory(data.run))
      .catch(() => {});

  let lastStatus = null;
  const addEvent = (event) => {
    // runEvents starts with the status now, which a reconnect repeats.
    if (event.kind === "STATUS" && event.status === lastStatus) return;
    if (event.kind === "STATUS") lastStatus = event.status;
    const text = event.kind === "STATUS" ? `status ${event.status}` : event.message;
    log.append(
      h(
        "li",
        { class: `event ${event.kind.toLowerCase()} ${event.stream ?? ""}` },
        h("time", {}, clock(event.at)),
        event.kind === "STATUS" ? statusBadge(event.status) : h("span", { class: "line" }, text),
      ),
    );
    while (log.childElementCount > MAX_LOG_LINES) log.firstElementChild.remove();
    log.parentElement.scrollTop = log.parentElement.scrollHeight;
  };

  const load = async () => {
    const data = await query(RUN, { id: runId });
    if (!data.run) throw new Error("This run does not exist, or is in a project this key cannot see.");
    update(data.run);
    drawStory(data.run);
    const keys = data.run.metricKeys;
    if (keys.length) {
      const variables = Object.fromEntries(keys.map((key, i) => [`k${i}`, key]));
      const history = await query(historyQuery(keys), { id: runId, ...variables });
      // Columns, not a point object each: the cheap form of a long series.
      keys.forEach((key, i) => chartOf(key).addColumns(history.run[`m${i}`].columns[key]));
    } else {
      replace(chartGrid, emptyState("No metrics yet", "Charts appear with the run's first points."));
    }
    // Replays stored batches, then live ones; points the history already drew are skipped by the chart.
    stops.push(
      subscribe(
        METRICS,
        { runId, after: null },
        (batch) => {
          // Columns per key, as the history: no object per point.
          for (const [key, columns] of Object.entries(batch.runMetrics.columns)) chartOf(key).addColumns(columns);
        },
        {
          resume: (batch, variables) => {
            variables.after = batch.runMetrics.cursor;
          },
        },
      ),
    );
    stops.push(
      subscribe(EVENTS, { runId }, (data) => {
        const event = data.runEvents;
        addEvent(event);
        if (event.kind === "STATUS") {
          update(event.run);
          refreshStory();
        }
      }),
    );
  };

  load().catch((error) => replace(main, errorBox(error)));
  const ticker = setInterval(() => {
    if (run && ACTIVE.has(run.status)) elapsed.textContent = duration(run.startedAt, run.finishedAt);
  }, 1000);
  const storyTicker = setInterval(() => {
    if (run && ACTIVE.has(run.status)) refreshStory();
  }, ARTIFACT_REFRESH_MS);
  return () => {
    clearInterval(ticker);
    clearInterval(storyTicker);
    stops.forEach((stop) => stop());
    charts.forEach((chart) => chart.destroy());
  };
}
