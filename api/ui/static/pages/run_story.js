// What a run keeps after it ends, besides its metrics: every attempt (where it ran, how and why it ended) and
// its artifacts (the checkpoints its retention keeps and the files it saved), downloadable with the tab's key.
import { storedKey } from "../session.js";
import { bytes, clock, duration, emptyState, errorBox, h, replace } from "../dom.js";

export const STORY_FIELDS = `attempts { attempt executor device startedAt endedAt outcome reason }
  artifacts { id name kind attempt step sizeBytes createdAt downloadUrl }`;

export function attemptsTable(attempts) {
  if (!attempts?.length) return emptyState("Not started yet");
  return h(
    "table",
    { class: "table compact attempts" },
    h("thead", {}, h("tr", {}, ["Attempt", "Executor", "Device", "Started", "Took", "Ended", "Why"].map((label) => h("th", {}, label)))),
    h(
      "tbody",
      {},
      attempts.map((attempt) =>
        h(
          "tr",
          { dataset: { attempt: String(attempt.attempt), outcome: attempt.outcome ?? "RUNNING" } },
          h("td", {}, attempt.attempt),
          h("td", { class: "mono ellipsis", title: attempt.executor ?? "" }, attempt.executor ?? "—"),
          h("td", {}, attempt.device ?? "—"),
          h("td", { class: "muted" }, clock(attempt.startedAt)),
          h("td", {}, duration(attempt.startedAt, attempt.endedAt)),
          h("td", {}, attempt.outcome ? h("span", { class: `badge status-${attempt.outcome.toLowerCase()}` }, attempt.outcome) : "running"),
          h("td", { class: "reason", title: attempt.reason ?? "" }, attempt.reason ?? "—"),
        ),
      ),
    ),
  );
}

/** Fetches with the key (a plain link would carry none) and hands the file to the browser. */
async function download(artifact, status) {
  try {
    const response = await fetch(artifact.downloadUrl, { headers: { Authorization: `Bearer ${storedKey()}` } });
    if (!response.ok) throw new Error(`${artifact.name}: ${response.status} ${response.statusText}`);
    const url = URL.createObjectURL(await response.blob());
    const link = h("a", { href: url, download: artifact.name, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  } catch (error) {
    replace(status, errorBox(error));
  }
}

export function artifactsTable(artifacts) {
  if (!artifacts?.length) return emptyState("No artifacts", "Checkpoints and files the run saves appear here.");
  const status = h("div");
  const rows = [...artifacts]
    .sort((a, b) => (b.createdAt ?? "").localeCompare(a.createdAt ?? ""))
    .map((artifact) =>
      h(
        "tr",
        { dataset: { artifact: artifact.name, kind: artifact.kind } },
        h("td", { class: "mono ellipsis", title: artifact.name }, artifact.name),
        h("td", {}, artifact.kind),
        h("td", {}, artifact.step ?? "—"),
        h("td", {}, bytes(artifact.sizeBytes)),
        h("td", { class: "muted" }, clock(artifact.createdAt)),
        h("td", {}, h("button", { class: "button ghost small-button", type: "button", onclick: () => download(artifact, status) }, "Download")),
      ),
    );
  return h(
    "div",
    {},
    status,
    h(
      "table",
      { class: "table compact artifacts" },
      h("thead", {}, h("tr", {}, ["Name", "Kind", "Step", "Size", "Saved", ""].map((label) => h("th", {}, label)))),
      h("tbody", {}, rows),
    ),
  );
}
