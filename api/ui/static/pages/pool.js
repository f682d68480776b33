// The executor pool: workers, busy ones, queue depth, what the autoscaler wants, and each executor.
import { query } from "../api.js";
import { emptyState, errorBox, h, keyValues, replace, timeAgo } from "../dom.js";

const POOL = `{ executorPool {
  workers busy queueDepth desiredWorkers queueByClass
  executors { id resourceClasses busy devices seenAt }
} }`;
const REFRESH_MS = 2000;

export function render(main) {
  const stats = h("div", { class: "stats" });
  const executors = h("div", { class: "card flush" }, h("p", { class: "loading" }, "Loading…"));
  replace(
    main,
    h(
      "div",
      { class: "page-head" },
      h("div", {}, h("h1", {}, "Executors"), h("p", { class: "muted" }, `Refreshed every ${REFRESH_MS / 1000} s`)),
    ),
    stats,
    h("h2", {}, "Executors"),
    executors,
  );
  const refresh = () =>
    query(POOL)
      .then(({ executorPool: pool }) => {
        replace(
          stats,
          stat("Workers", pool.workers),
          stat("Busy", pool.busy),
          stat("Queued runs", pool.queueDepth),
          stat("Wanted workers", pool.desiredWorkers),
          h(
            "div",
            { class: "card stat" },
            h("span", { class: "label" }, "Queue by class"),
            keyValues(pool.queueByClass, { empty: "empty" }),
          ),
        );
        replace(executors, executorTable(pool.executors));
      })
      .catch((error) => replace(executors, errorBox(error)));
  refresh();
  const timer = setInterval(refresh, REFRESH_MS);
  return () => clearInterval(timer);
}

function stat(label, value) {
  return h("div", { class: "card stat" }, h("span", { class: "label" }, label), h("strong", {}, String(value)));
}

function executorTable(list) {
  if (!list.length) return emptyState("No executors", "Start `ptw worker`, or `ptw serve` with --executors N.");
  return h(
    "table",
    { class: "table" },
    h("thead", {}, h("tr", {}, ["Executor", "State", "Classes", "Devices", "Seen"].map((label) => h("th", {}, label)))),
    h(
      "tbody",
      {},
      list.map((executor) =>
        h(
          "tr",
          {},
          h("td", { class: "mono" }, executor.id),
          h("td", {}, h("span", { class: `badge ${executor.busy ? "status-running" : "status-idle"}` }, executor.busy ? "BUSY" : "IDLE")),
          h("td", {}, executor.resourceClasses.join(", ")),
          h("td", {}, executor.devices.join(", ") || "—"),
          h("td", { class: "muted" }, timeAgo(executor.seenAt)),
        ),
      ),
    ),
  );
}
