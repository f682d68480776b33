// Starting a hyperparameter search: the objective, direction, sampler, pruner and budget, and the search
// space edited as a form, a row per parameter of the workflow's schema (pre-filled from it).
import { query } from "../api.js";
import { errorBox, h, replace } from "../dom.js";

const WORKFLOWS = `query Workflows($projectId: ID!) {
  workflows(projectId: $projectId, first: 100) { edges { node { id name entrypoint paramsSchema defaults } } }
}`;
const START = `mutation StartSearch($input: StartOptimizationInput!) { startOptimization(input: $input) { id status } }`;
const SAMPLERS = ["tpe", "random", "grid", "cmaes"];
const PRUNERS = ["median", "none", "successive_halving", "hyperband"];

export function render(main, { project, params: [chosen] }) {
  const form = h("form", { class: "card form wide-form", novalidate: true });
  replace(
    main,
    h("nav", { class: "crumbs" }, h("a", { href: "#/optimizations" }, "Optimizations"), " / new search"),
    h(
      "div",
      { class: "page-head" },
      h("div", {}, h("h1", {}, "Start a search"), h("p", { class: "muted" }, `in project ${project.name}`)),
    ),
    form,
  );
  query(WORKFLOWS, { projectId: project.id })
    .then((data) => {
      const workflows = data.workflows.edges.map((edge) => edge.node).filter((w) => w.name !== "ptw-tuner");
      const first = workflows.find((workflow) => workflow.name === chosen) ?? workflows[0];
      if (!first) replace(form, errorBox(new Error("No workflow is visible to this project.")));
      else drawForm(form, project, workflows, first);
    })
    .catch((error) => replace(form, errorBox(error)));
}

function select(name, options, selected) {
  return h("select", { name }, options.map((option) => h("option", { value: option, selected: option === selected }, option)));
}

function labelled(text, input, hint) {
  return h("label", { class: "field" }, h("span", {}, text), input, hint ? h("small", {}, hint) : null);
}

function drawForm(form, project, workflows, workflow) {
  const picker = h(
    "select",
    {
      name: "workflow",
      onchange: () => drawForm(form, project, workflows, workflows.find((candidate) => candidate.id === picker.value)),
    },
    workflows.map((candidate) => h("option", { value: candidate.id, selected: candidate.id === workflow.id }, candidate.name)),
  );
  const objective = h("input", { type: "text", name: "objective", placeholder: "a metric the workflow logs", required: true });
  const direction = select("direction", ["MAXIMIZE", "MINIMIZE"], "MAXIMIZE");
  const sampler = select("sampler", SAMPLERS, "tpe");
  const pruner = select("pruner", PRUNERS, "median");
  const maxTrials = h("input", { type: "number", name: "maxTrials", value: "20", min: "1", step: "1" });
  const maxParallel = h("input", { type: "number", name: "maxParallel", value: "2", min: "1", step: "1" });
  const properties = Object.entries(workflow.paramsSchema?.properties ?? {});
  const rows = properties.map(([name, property]) => spaceRow(name, property, workflow.defaults?.[name]));
  const status = h("div", { class: "form-status" });
  const submit = h("button", { class: "button primary", type: "submit" }, "Start search");
  replace(
    form,
    h("div", { class: "fields" }, labelled("Workflow", picker, workflow.entrypoint), labelled("Objective", objective, "the metric to optimize, as logged"), labelled("Direction", direction)),
    h("div", { class: "fields" }, labelled("Sampler", sampler), labelled("Pruner", pruner), labelled("Trials", maxTrials), labelled("In parallel", maxParallel)),
    h("h3", { class: "space-title" }, "Search space"),
    rows.length
      ? h(
          "table",
          { class: "table compact space-table" },
          h("thead", {}, h("tr", {}, ["Search", "Parameter", "Type", "Low", "High", "Step", "Log", "Choices"].map((label) => h("th", {}, label)))),
          h("tbody", {}, rows.map((row) => row.element)),
        )
      : h("p", { class: "muted" }, "This workflow has no parameters to search over."),
    h("div", { class: "form-actions" }, submit, status),
  );
  form.onsubmit = async (event) => {
    event.preventDefault();
    form.querySelectorAll(".invalid").forEach((element) => element.classList.remove("invalid"));
    replace(status);
    try {
      const space = Object.fromEntries(rows.filter((row) => row.included()).map((row) => [row.name, row.read()]));
      if (!Object.keys(space).length) throw new Error("Tick at least one parameter to search over.");
      if (!objective.value.trim()) throw Object.assign(new Error("Name the metric to optimize."), { path: "objective" });
      submit.disabled = true;
      const input = {
        workflowId: workflow.id,
        projectId: project.id,
        kind: "HYPERPARAMETER_SEARCH",
        objective: objective.value.trim(),
        direction: direction.value,
        sampler: sampler.value,
        pruner: pruner.value,
        maxTrials: Number(maxTrials.value),
        maxParallel: Number(maxParallel.value),
        space,
      };
      const data = await query(START, { input });
      location.hash = `#/optimizations/${encodeURIComponent(data.startOptimization.id)}`;
    } catch (error) {
      // The server names the place of a mistake in the space ("space.x.high"): mark that input.
      const where = error.path ? form.querySelector(`[data-path="${CSS.escape(error.path)}"]`) ?? form.querySelector(`[name="${CSS.escape(error.path)}"]`) : null;
      where?.classList.add("invalid");
      replace(status, errorBox(error));
      submit.disabled = false;
    }
  };
}

/** One parameter's row: whether it is searched, its type and its range or choices. */
function spaceRow(name, property, fallback) {
  const initial = fallback ?? property.default;
  const choicesOf = () => {
    if (Array.isArray(property.enum)) return property.enum;
    if (property.type === "boolean") return [true, false];
    return initial === undefined ? [] : [initial];
  };
  const kind =
    Array.isArray(property.enum) || property.type === "boolean" || property.type === "string"
      ? "categorical"
      : property.type === "integer"
        ? "int"
        : "float";
  const range = defaultRange(property, initial, kind);
  const path = (key) => ({ "data-path": `space.${name}.${key}` });
  const include = h("input", { type: "checkbox", name: `search-${name}`, "aria-label": `search over ${name}` });
  const type = h("select", { name: `type-${name}`, ...path("type") }, ["float", "int", "categorical"].map((t) => h("option", { value: t, selected: t === kind }, t)));
  const low = h("input", { type: "number", name: `low-${name}`, value: String(range.low), step: "any", ...path("low") });
  const high = h("input", { type: "number", name: `high-${name}`, value: String(range.high), step: "any", ...path("high") });
  const step = h("input", { type: "number", name: `step-${name}`, placeholder: "—", step: "any", ...path("step") });
  const log = h("input", { type: "checkbox", name: `log-${name}`, checked: range.log, ...path("log") });
  const choices = h("input", { type: "text", name: `choices-${name}`, value: choicesOf().map((c) => JSON.stringify(c)).join(", "), placeholder: '"sgd", "adam"', ...path("choices") });
  const sync = () => {
    const categorical = type.value === "categorical";
    for (const input of [low, high, step, log]) input.disabled = categorical;
    choices.disabled = !categorical;
  };
  type.addEventListener("change", sync);
  sync();
  const element = h(
    "tr",
    { dataset: { param: name } },
    h("td", {}, include),
    h("td", { class: "mono strong" }, name),
    h("td", {}, type),
    h("td", {}, low),
    h("td", {}, high),
    h("td", {}, step),
    h("td", {}, log),
    h("td", {}, choices),
  );
  const read = () => {
    if (type.value === "categorical") {
      let parsed;
      try {
        parsed = JSON.parse(`[${choices.value}]`);
      } catch {
        // Bare words are strings: sgd, adam.
        parsed = choices.value.split(",").map((part) => part.trim()).filter(Boolean);
      }
      return { type: "categorical", choices: parsed };
    }
    const spec = { type: type.value, low: Number(low.value), high: Number(high.value) };
    if (log.checked) spec.log = true;
    if (step.value.trim() !== "") spec.step = Number(step.value);
    return spec;
  };
  return { name, element, read, included: () => include.checked };
}

/** A starting range from the schema's bounds, else around the default; a learning-rate-like positive float
 * spanning decades starts on a log scale. */
function defaultRange(property, initial, kind) {
  const low = property.minimum ?? property.exclusiveMinimum;
  const high = property.maximum ?? property.exclusiveMaximum;
  if (low !== undefined && high !== undefined) return { low, high, log: kind === "float" && low > 0 && high / low >= 100 };
  if (typeof initial === "number" && initial > 0) {
    if (kind === "int") return { low: Math.max(1, Math.floor(initial / 4)), high: initial * 4, log: false };
    return { low: initial / 10, high: initial * 10, log: true };
  }
  return { low: low ?? 0, high: high ?? 1, log: false };
}
