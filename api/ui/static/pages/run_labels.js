// A run's name, tags and notes: shown on its page, and edited in place by a member (updateRun).
import { query } from "../api.js";
import { errorBox, h, replace } from "../dom.js";

const UPDATE = `mutation UpdateRun($id: ID!, $input: UpdateRunInput!) {
  updateRun(id: $id, input: $input) { id name tags notes }
}`;

export function tagChips(tags) {
  return (tags ?? []).length ? h("span", { class: "chips tags" }, tags.map((tag) => h("span", { class: "chip tag" }, tag))) : null;
}

/** The labels of ``run``; ``saved(changes)`` is called with what the server answered after an edit. */
export function runLabels(run, saved) {
  const box = h("div", { class: "kv-row labels" });
  const view = () =>
    replace(
      box,
      h("span", { class: "label" }, "Labels"),
      h(
        "div",
        { class: "labels-view" },
        tagChips(run.tags) ?? h("span", { class: "muted" }, "no tags"),
        run.notes ? h("p", { class: "notes" }, run.notes) : null,
      ),
      h("button", { class: "button ghost small-button", type: "button", onclick: edit }, "Edit"),
    );
  const edit = () => {
    const name = h("input", { type: "text", name: "run-name", value: run.name ?? "", maxlength: "200" });
    const tags = h("input", { type: "text", name: "run-tags", value: (run.tags ?? []).join(", "), placeholder: "baseline, lr-sweep" });
    const notes = h("textarea", { name: "run-notes", rows: "3" }, run.notes ?? "");
    const status = h("div", { class: "form-status" });
    const form = h(
      "form",
      {
        class: "labels-form",
        onsubmit: async (event) => {
          event.preventDefault();
          const input = {
            name: name.value.trim(),
            tags: tags.value.split(",").map((tag) => tag.trim()).filter(Boolean),
            notes: notes.value,
          };
          try {
            const data = await query(UPDATE, { id: run.id, input });
            saved(data.updateRun);
          } catch (error) {
            replace(status, errorBox(error));
          }
        },
      },
      h("label", { class: "field" }, h("span", {}, "name"), name),
      h("label", { class: "field" }, h("span", {}, "tags"), tags, h("small", {}, "separated by commas")),
      h("label", { class: "field" }, h("span", {}, "notes"), notes),
      h(
        "div",
        { class: "actions" },
        h("button", { class: "button primary", type: "submit" }, "Save"),
        h("button", { class: "button ghost", type: "button", onclick: view }, "Cancel"),
        status,
      ),
    );
    replace(box, h("span", { class: "label" }, "Labels"), form);
    name.focus();
  };
  view();
  return box;
}
