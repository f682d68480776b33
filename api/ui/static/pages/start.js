// Starting a run: a form generated from the chosen workflow's params schema, pre-filled with its defaults.
import { query } from "../api.js";
import { errorBox, h, replace } from "../dom.js";

const WORKFLOWS = `query Workflows($projectId: ID!) {
  workflows(projectId: $projectId, first: 100) {
    edges { node { id name entrypoint builtin paramsSchema defaults } }
  }
}`;
const START = `mutation Start($input: StartRunInput!) { startRun(input: $input) { id status } }`;

export function render(main, { project, params: [chosen] }) {
  const form = h("form", { class: "card form", novalidate: true });
  replace(
    main,
    h("nav", { class: "crumbs" }, h("a", { href: "#/" }, "Runs"), " / new"),
    h(
      "div",
      { class: "page-head" },
      h("div", {}, h("h1", {}, "Start a run"), h("p", { class: "muted" }, `in project ${project.name}`)),
    ),
    form,
  );
  query(WORKFLOWS, { projectId: project.id })
    .then((data) => {
      const workflows = data.workflows.edges.map((edge) => edge.node);
      const name = decodeURIComponent(chosen ?? "");
      const first = workflows.find((workflow) => workflow.name === name) ?? workflows[0];
      if (!first) replace(form, errorBox(new Error("No workflow is visible to this project.")));
      else drawForm(form, project, workflows, first);
    })
    .catch((error) => replace(form, errorBox(error)));
}

function drawForm(form, project, workflows, workflow) {
  const picker = h(
    "select",
    {
      name: "workflow",
      onchange: () =>
        drawForm(form, project, workflows, workflows.find((candidate) => candidate.id === picker.value)),
    },
    workflows.map((candidate) =>
      h("option", { value: candidate.id, selected: candidate.id === workflow.id }, candidate.name),
    ),
  );
  const schema = workflow.paramsSchema ?? {};
  const properties = Object.entries(schema.properties ?? {});
  const fields = properties.map(([name, property]) => field(name, property, workflow.defaults?.[name]));
  const status = h("div", { class: "form-status" });
  const submit = h("button", { class: "button primary", type: "submit" }, "Start run");
  replace(
    form,
    h(
      "label",
      { class: "field wide" },
      h("span", {}, "Workflow"),
      picker,
      h("small", {}, schema.title ?? workflow.entrypoint),
    ),
    fields.length
      ? h("div", { class: "fields" }, fields.map((entry) => entry.element))
      : h("p", { class: "muted" }, "This workflow takes no parameters."),
    h("div", { class: "form-actions" }, submit, status),
  );
  form.onsubmit = async (event) => {
    event.preventDefault();
    submit.disabled = true;
    replace(status);
    try {
      const params = Object.fromEntries(
        fields.map((entry) => [entry.name, entry.read()]).filter(([, value]) => value !== undefined),
      );
      const data = await query(START, { input: { workflowId: workflow.id, projectId: project.id, params } });
      location.hash = `#/runs/${encodeURIComponent(data.startRun.id)}`;
    } catch (error) {
      replace(status, errorBox(error));
      submit.disabled = false;
    }
  };
}

/** An input for one property of a JSON schema: enum, boolean, integer, number or string. */
function field(name, property, fallback) {
  const initial = fallback ?? property.default;
  const hint = describe(property);
  let input;
  let read;
  if (Array.isArray(property.enum)) {
    input = h(
      "select",
      { name },
      property.enum.map((option, i) =>
        h("option", { value: String(i), selected: option === initial }, String(option)),
      ),
    );
    read = () => property.enum[Number(input.value)];
  } else if (property.type === "boolean") {
    input = h("input", { type: "checkbox", name, checked: Boolean(initial) });
    read = () => input.checked;
  } else if (property.type === "integer" || property.type === "number") {
    const integer = property.type === "integer";
    input = h("input", {
      type: "number",
      name,
      value: initial ?? "",
      min: property.minimum ?? undefined,
      max: property.maximum ?? undefined,
      step: property.multipleOf ?? (integer ? 1 : "any"),
      required: true,
    });
    read = () => {
      if (input.value.trim() === "") return undefined; // left empty: the workflow's default applies
      const value = Number(input.value);
      if (integer && !Number.isInteger(value)) throw new Error(`${name} must be a whole number`);
      return value;
    };
  } else {
    input = h("input", { type: "text", name, value: initial ?? "" });
    read = () => (input.value === "" && initial === undefined ? undefined : input.value);
  }
  const element = h(
    "label",
    { class: property.type === "boolean" ? "field check" : "field" },
    h("span", {}, name),
    input,
    hint ? h("small", {}, hint) : null,
  );
  return { name, element, read };
}

function describe(property) {
  const parts = [];
  if (property.description) parts.push(property.description);
  const low = property.minimum ?? property.exclusiveMinimum;
  const high = property.maximum ?? property.exclusiveMaximum;
  if (low !== undefined || high !== undefined) {
    const open = property.exclusiveMinimum !== undefined ? "(" : "[";
    const close = property.exclusiveMaximum !== undefined ? ")" : "]";
    parts.push(`${open}${low ?? "−∞"}, ${high ?? "∞"}${close}`);
  }
  if (property.multipleOf) parts.push(`multiple of ${property.multipleOf}`);
  return parts.join(" · ");
}
