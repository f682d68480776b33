// A performance tuning's views: the variants as they are measured (from the tuner run's metrics, live), and
// once done, each variant's speedup over the baseline as bars, fastest first.
import { query, subscribe } from "../api.js";
import { ACTIVE, emptyState, h, keyValues, number, replace } from "../dom.js";

const TUNER_RUN = `query TunerRun($id: ID!) {
  runs(filter: {optimizationId: $id}, first: 1) { edges { node { id status } } }
}`;
const METRICS = `subscription Measured($runId: ID!, $after: String) {
  runMetrics(runId: $runId, keys: ["variant_index", "throughput", "speedup", "variants_planned"], after: $after) {
    cursor points { key step value }
  }
}`;
const EVENTS = `subscription TunerLines($runId: ID!) { runEvents(runId: $runId) { kind message } }`;
// The tuner prints one line per variant measured: "[3] compile: 1234 samples/s, 1.60x, ...".
const VARIANT_LINE = /^\[(\d+)\] ([^:\s]+):/;

/** A variant's label: its name, then the settings it has (a null or false one is a setting it leaves off). */
export function variantLabel(config) {
  const { variant, ...settings } = config ?? {};
  const shown = Object.fromEntries(Object.entries(settings).filter(([, value]) => value !== null && value !== false));
  return h("span", { class: "variant" }, variant ? h("b", { class: "mono variant-name" }, variant) : null, " ", keyValues(shown, { empty: "" }));
}

/** Horizontal bars of ``metrics.speedup``, fastest first; plain elements read better than a canvas here. */
export function speedupBars(results) {
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
        h("span", { class: "bar-label" }, variantLabel(result.config)),
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

/**
 * While the tuner measures: a row per variant as soon as it is measured (index, name, throughput, speedup),
 * and how many of the planned ones are done. Returns the function that stops following.
 */
export function followMeasuring(box, optimizationId) {
  const variants = new Map();
  const names = new Map();
  let planned = null;
  let runStatus = null;
  const stops = [];
  const draw = () => {
    const rows = [...variants.entries()].sort(([a], [b]) => a - b);
    const done = rows.length;
    const total = planned === null ? null : planned + 1; // the baseline is measured first, at index 0
    replace(
      box,
      h(
        "section",
        { class: "card measuring", dataset: { measured: String(done), planned: String(total ?? "") } },
        h(
          "header",
          { class: "measuring-head" },
          h("h3", {}, ACTIVE.has(runStatus) || runStatus === null ? "Measuring variants…" : "Measured variants"),
          h("span", { class: "muted" }, total ? `${done} of ${Math.max(done, total)} measured` : `${done} measured`),
        ),
        total ? h("div", { class: "progress" }, h("span", { style: `width:${(100 * Math.min(done, total)) / total}%` })) : null,
        done
          ? h(
              "table",
              { class: "table compact" },
              h("thead", {}, h("tr", {}, ["#", "Variant", "Throughput", "Speedup"].map((label) => h("th", {}, label)))),
              h(
                "tbody",
                {},
                rows.map(([index, measured]) =>
                  h(
                    "tr",
                    { dataset: { variant: String(index) } },
                    h("td", {}, index),
                    h("td", { class: "mono" }, names.get(index) ?? (index === 0 ? "eager-fp32 (baseline)" : `variant ${index}`)),
                    h("td", {}, measured.throughput === undefined ? "failed" : `${number(measured.throughput)} samples/s`),
                    h("td", { class: "strong" }, measured.speedup === undefined ? "—" : `${number(measured.speedup)}×`),
                  ),
                ),
              ),
            )
          : h("p", { class: "muted" }, "The baseline is measured first; each variant appears here when it is done."),
      ),
    );
  };
  draw();
  query(TUNER_RUN, { id: optimizationId })
    .then((data) => {
      const run = data.runs.edges[0]?.node;
      if (!run) return;
      runStatus = run.status;
      stops.push(
        subscribe(
          METRICS,
          { runId: run.id, after: null },
          (batch) => {
            for (const point of batch.runMetrics.points) {
              if (point.key === "variants_planned") planned = point.value;
              else {
                const entry = variants.get(point.step) ?? {};
                if (point.key !== "variant_index") entry[point.key] = point.value;
                variants.set(point.step, entry);
              }
            }
            draw();
          },
          {
            resume: (batch, variables) => {
              variables.after = batch.runMetrics.cursor;
            },
          },
        ),
      );
      stops.push(
        subscribe(EVENTS, { runId: run.id }, (data) => {
          const match = data.runEvents.kind === "LOG" && VARIANT_LINE.exec(data.runEvents.message ?? "");
          if (match) {
            names.set(Number(match[1]), match[2]);
            draw();
          }
        }),
      );
    })
    .catch(() => {});
  return () => stops.forEach((stop) => stop());
}
