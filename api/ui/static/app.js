// The dashboard's shell: logging in with a key, the project switcher, navigation and hash routes.
import { closeConnection, dropConnection, onConnection, query } from "./api.js";
import { errorBox, h, replace } from "./dom.js";
import * as compare from "./pages/compare.js";
import * as optimize from "./pages/optimize.js";
import * as optimizations from "./pages/optimizations.js";
import * as pool from "./pages/pool.js";
import * as run from "./pages/run.js";
import * as runs from "./pages/runs.js";
import * as start from "./pages/start.js";
import { forget, storedKey, storedProject, storeKey, storeProject } from "./session.js";

const VIEWER = `{ viewer { id name projects { id name role } } }`;
// Hash routes keep every page at "/", the one path the server serves HTML on.
const ROUTES = [
  [/^#\/runs\/([^/]+)$/, run.render, "runs"],
  [/^#\/compare\/([^/]*)$/, compare.render, "runs"],
  [/^#\/new(?:\/([^/]+))?$/, start.render, "new"],
  [/^#\/optimize(?:\/([^/]+))?$/, optimize.render, "optimizations"],
  [/^#\/optimizations\/([^/]+)$/, optimizations.renderDetail, "optimizations"],
  [/^#\/optimizations$/, optimizations.renderList, "optimizations"],
  [/^#\/executors$/, pool.render, "executors"],
  [/^(?:#\/?)?$/, runs.render, "runs"],
];

const root = document.getElementById("app");
let viewer = null;
let leave = null;

function project() {
  return viewer.projects.find((candidate) => candidate.id === storedProject()) ?? viewer.projects[0];
}

function showLogin(message) {
  leave?.();
  leave = null;
  const input = h("input", {
    type: "password",
    name: "key",
    placeholder: "ptw_…",
    autocomplete: "off",
    required: true,
    autofocus: true,
  });
  const error = message ? errorBox(new Error(message)) : null;
  replace(
    root,
    h(
      "main",
      { class: "login" },
      h(
        "form",
        {
          class: "card login-card",
          onsubmit: (event) => {
            event.preventDefault();
            storeKey(input.value.trim());
            signIn();
          },
        },
        h("div", { class: "brand big" }, h("img", { src: "/ui/favicon.svg", alt: "" }), "ptw"),
        h("h1", {}, "Sign in with an API key"),
        h(
          "p",
          { class: "muted" },
          "The key stays in this browser tab only. A local server keeps its admin key in .ptw/admin.key; ",
          "`ptw keys create` makes more.",
        ),
        error,
        h("label", { class: "field wide" }, h("span", {}, "API key"), input),
        h("button", { class: "button primary wide", type: "submit" }, "Sign in"),
      ),
    ),
  );
  input.focus();
}

function shell() {
  const main = h("main", { class: "content", id: "main" });
  const live = h("span", { class: "live", title: "live updates (WebSocket)" }, "idle");
  onConnection((state) => {
    live.dataset.state = state;
    live.textContent = state;
  });
  const switcher = h(
    "select",
    {
      name: "project",
      "aria-label": "Project",
      onchange: () => {
        storeProject(switcher.value);
        location.hash = "#/";
        route();
      },
    },
    viewer.projects.map((candidate) =>
      h("option", { value: candidate.id, selected: candidate.id === project().id }, `${candidate.name} · ${candidate.role.toLowerCase()}`),
    ),
  );
  const link = (href, label, name) => h("a", { href, dataset: { nav: name } }, label);
  replace(
    root,
    h(
      "header",
      { class: "topbar" },
      h("a", { class: "brand", href: "#/" }, h("img", { src: "/ui/favicon.svg", alt: "" }), "ptw"),
      h(
        "nav",
        { class: "tabs" },
        link("#/", "Runs", "runs"),
        link("#/new", "Start a run", "new"),
        link("#/optimizations", "Optimizations", "optimizations"),
        link("#/executors", "Executors", "executors"),
        h("a", { href: "/graphql" }, "GraphiQL"),
      ),
      h(
        "div",
        { class: "account" },
        live,
        switcher,
        h(
          "button",
          {
            class: "button ghost",
            onclick: () => {
              forget();
              closeConnection();
              viewer = null;
              showLogin();
            },
          },
          "Sign out",
        ),
      ),
    ),
    main,
  );
}

function route() {
  const main = document.getElementById("main");
  if (!viewer || !main) return;
  leave?.();
  leave = null;
  for (const [pattern, render, tab] of ROUTES) {
    const match = location.hash.match(pattern);
    if (!match) continue;
    document.querySelectorAll("[data-nav]").forEach((a) => a.classList.toggle("active", a.dataset.nav === tab));
    const params = match.slice(1).filter((part) => part !== undefined).map(decodeURIComponent);
    leave = render(main, { project: project(), params }) ?? null;
    window.scrollTo(0, 0);
    return;
  }
  replace(main, errorBox(new Error(`No page at ${location.hash}`)));
}

async function signIn() {
  if (!storedKey()) return showLogin();
  replace(root, h("p", { class: "loading center" }, "Signing in…"));
  try {
    viewer = (await query(VIEWER)).viewer;
  } catch (error) {
    forget();
    return showLogin(error.code === "UNAUTHENTICATED" ? "That key was not accepted." : error.message);
  }
  if (!viewer.projects.length) return showLogin("This key belongs to no project.");
  shell();
  route();
}

window.addEventListener("hashchange", route);
// For tests and the curious: drop the live connection to watch streams resume from their cursors.
window.ptw = { dropConnection };
signIn();
