// Building elements and formatting values. Text goes in through textContent only, so params, log lines and
// names that users chose can never become markup.

export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2).toLowerCase(), value);
    else if (name === "class") element.className = value;
    else if (name === "dataset") Object.assign(element.dataset, value);
    else if (name in element && typeof value !== "string") element[name] = value;
    else element.setAttribute(name, value === true ? "" : value);
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
}

export function replace(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

export const ACTIVE = new Set(["QUEUED", "STARTING", "RUNNING", "CANCELLING"]);

export function statusBadge(status) {
  return h("span", { class: `badge status-${String(status).toLowerCase()}`, dataset: { status } }, status);
}

/** The first characters of the uuid inside an opaque global id, for display only. */
export function shortId(id) {
  try {
    return atob(id).split(":").pop().slice(0, 8);
  } catch {
    return String(id).slice(-8);
  }
}

/**
 * A number as people read it: integers whole, with separators; others to four significant digits but never
 * fewer than their integer digits (2500.17 is "2,500.2", not "25" or "2.5e+3"); very small or very large
 * magnitudes in exponent form.
 */
export function number(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value !== "number") return String(value);
  if (!Number.isFinite(value)) return Number.isNaN(value) ? "NaN" : value > 0 ? "∞" : "−∞";
  const magnitude = Math.abs(value);
  if (magnitude !== 0 && (magnitude < 1e-3 || magnitude >= 1e9)) {
    const [mantissa, exponent] = value.toExponential(3).split("e");
    return `${mantissa.replace(/\.?0+$/, "")}e${exponent.replace("+", "")}`;
  }
  if (Number.isInteger(value)) return value.toLocaleString("en-US");
  const integerDigits = magnitude >= 1 ? Math.floor(Math.log10(magnitude)) + 1 : 0;
  return value.toLocaleString("en-US", { maximumSignificantDigits: Math.min(21, Math.max(4, integerDigits + 1)) });
}

export function compactValue(value) {
  if (typeof value === "number") return number(value);
  if (typeof value === "string") return value;
  return JSON.stringify(value);
}

export function bytes(size) {
  const units = ["B", "KiB", "MiB", "GiB"];
  let unit = 0;
  while (size >= 1024 && unit < units.length - 1) {
    size /= 1024;
    unit += 1;
  }
  return `${unit ? size.toFixed(1) : size} ${units[unit]}`;
}

export function timeAgo(iso) {
  if (!iso) return "—";
  const seconds = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
  if (seconds < 60) return `${Math.floor(seconds)}s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h ago`;
  return new Date(iso).toLocaleDateString();
}

export function clock(iso) {
  return iso ? new Date(iso).toLocaleTimeString([], { hour12: false }) : "—";
}

export function duration(from, to) {
  if (!from) return "—";
  const seconds = Math.max(0, ((to ? new Date(to) : new Date()) - new Date(from)) / 1000);
  if (seconds < 60) return `${seconds.toFixed(1)}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ${Math.floor(seconds % 60)}s`;
  return `${Math.floor(seconds / 3600)}h ${Math.floor((seconds % 3600) / 60)}m`;
}

/** A definition list of label/value pairs. */
export function facts(pairs) {
  return h(
    "dl",
    { class: "facts" },
    pairs.map(([label, value]) => h("div", {}, h("dt", {}, label), h("dd", {}, value ?? "—"))),
  );
}

export function keyValues(object, { empty = "—" } = {}) {
  const entries = Object.entries(object ?? {});
  if (!entries.length) return h("span", { class: "muted" }, empty);
  return h(
    "span",
    { class: "chips" },
    entries.map(([key, value]) => {
      const text = compactValue(value);
      // A long value (a nested params object) is cut to the chip's width; the whole of it is its title.
      return h("span", { class: "chip", title: `${key} ${text}` }, h("b", {}, key), " ", text);
    }),
  );
}

export function emptyState(title, text) {
  return h("div", { class: "empty" }, h("strong", {}, title), text ? h("p", {}, text) : null);
}

export function errorBox(error) {
  return h("div", { class: "alert" }, error?.message ?? String(error));
}
