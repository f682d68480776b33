"""Runs side by side and numbers said right, in a real browser: three real runs picked in the runs table are
compared (charts overlaid per key, differing params and summaries marked, the selection in the URL); the
charts read values on hover, switch to a log scale, smooth and plot by time; numbers of every size read as
people write them; a long params object does not push the runs table's columns off the page."""

from __future__ import annotations

import re
import time
from typing import Any

from playwright.sync_api import Page, expect

from tests.browser.conftest import Browser, shoot
from tests.browser.test_dashboard import LIVE, graphql
from tests.e2e.conftest import Server

REGISTER = """mutation($input: RegisterWorkflowInput!) { registerWorkflow(input: $input) { id name } }"""
START = """mutation($input: StartRunInput!) { startRun(input: $input) { id } }"""
STATUS = """query($id: ID!) { run(id: $id) { status } }"""
CURVES = {
    "name": "browser-curves",
    "entrypoint": "tests.workflows.curves:curve",
    "paramsSchema": {
        "type": "object",
        "properties": {
            "scale": {"type": "number"},
            "steps": {"type": "integer"},
            "delay": {"type": "number"},
            "summary": {"type": "object"},
            "target_params": {"type": "object"},
            "checkpoint_every": {"type": "integer"},
        },
    },
    "defaults": {
        "scale": 1.0,
        "steps": 20,
        "delay": 0.0,
        "summary": {},
        "target_params": {},
        "checkpoint_every": 0,
    },
}
# Every size a summary holds: tiny, small, in the thousands (the old formatter cut 2500.17 to "25"), huge.
SIZES = {
    "tiny": 1.5e-7,
    "small": 0.012345,
    "one": 0.965,
    "thousands": 2500.17,
    "twelve_hundred": 1200.3,
    "big": 123456.7,
    "millions": 1234567.891,
    "huge": 2.5e12,
    "count": 1234567,
    "negative": -3.75,
}
SAID = {
    "tiny": "1.5e-7",
    "small": "0.01235",
    "one": "0.965",
    "thousands": "2,500.2",
    "twelve_hundred": "1,200.3",
    "big": "123,456.7",
    "millions": "1,234,567.9",
    "huge": "2.5e12",
    "count": "1,234,567",
    "negative": "-3.75",
}


_registered: dict[str, str] = {}


def workflow_id(server: Server) -> str:
    if server.url not in _registered:
        _registered[server.url] = str(graphql(server, REGISTER, {"input": CURVES})["registerWorkflow"]["id"])
    return _registered[server.url]


def finished_run(server: Server, params: dict[str, Any]) -> str:
    wid = workflow_id(server)
    run_id = str(graphql(server, START, {"input": {"workflowId": wid, "params": params}})["startRun"]["id"])
    deadline = time.monotonic() + LIVE / 1000
    while (status := graphql(server, STATUS, {"id": run_id})["run"]["status"]) != "SUCCEEDED":
        assert status not in ("FAILED", "CANCELLED") and time.monotonic() < deadline, status
        time.sleep(0.2)
    return run_id


def row_of(page: Page, run_id: str) -> Any:
    return page.locator(f"tr[data-run-id='{run_id}']")


def test_three_runs_picked_in_the_table_are_compared(pages: Browser) -> None:
    server = pages.server
    runs = [
        finished_run(server, {"scale": 1.0, "steps": 30, "summary": {"seed": 1, "note": "same"}}),
        finished_run(server, {"scale": 2.0, "steps": 30, "summary": {"seed": 2, "note": "same"}}),
        finished_run(server, {"scale": 4.0, "steps": 40, "summary": {"seed": 3, "note": "same"}}),
    ]
    page = pages.signed_in()
    for run_id in runs:
        expect(row_of(page, run_id)).to_be_visible(timeout=LIVE)
        row_of(page, run_id).locator("input[name=pick]").check()
    compare = page.locator(".compare-button")
    expect(compare).to_have_text("Compare 3 runs")
    compare.click()
    page.wait_for_url(re.compile(r"#/compare/"))
    expect(page.locator(".page-head h1")).to_have_text("Comparing 3 runs")

    # One chart per key, each with the three runs overlaid, every point of each.
    for key in ("loss", "accuracy"):
        chart = page.locator(f".chart[data-key='{key}']")
        expect(chart).to_have_attribute("data-series", "3")
        expect(chart).to_have_attribute("data-points", "40")
    # Params and summaries side by side; what differs is marked, what is the same is not.
    table = page.locator(".compare-table")
    expect(table.locator("thead th[data-run-id]")).to_have_count(3)
    expect(page.locator("tr[data-row='Params:scale']")).to_have_class(re.compile("differs"))
    expect(page.locator("tr[data-row='Params:scale'] td")).to_have_text(["1", "2", "4"])
    expect(page.locator("tr[data-row='Params:steps']")).to_have_class(re.compile("differs"))
    expect(page.locator("tr[data-row='Params:delay']")).to_have_class(re.compile("same"))
    expect(page.locator("tr[data-row='Summary:seed']")).to_have_class(re.compile("differs"))
    expect(page.locator("tr[data-row='Summary:note']")).to_have_class(re.compile("same"))
    expect(page.locator("tr[data-row='Summary:final_loss'] td")).to_have_text(["0.03333", "0.06667", "0.1"])
    page.locator("input[name=only-differing]").check()
    expect(page.locator("tr[data-row='Params:delay']")).to_be_hidden()
    expect(page.locator("tr[data-row='Params:scale']")).to_be_visible()
    page.locator("input[name=only-differing]").uncheck()
    shoot(page, "20-compare-three-runs")

    # The selection is in the URL: a new tab opened at that address shows the same comparison.
    shared = page.url
    other = pages.signed_in()
    other.goto(shared)
    expect(other.locator(".compare-table thead th[data-run-id]")).to_have_count(3)
    heads = other.locator(".compare-table thead th[data-run-id]")
    ids = [heads.nth(i).get_attribute("data-run-id") for i in range(3)]
    assert ids == runs

    # Hovering a chart reads the values under the cursor, one per run.
    page.bring_to_front()
    chart = page.locator(".chart[data-key='loss']")
    over = chart.locator(".u-over")
    box = over.bounding_box()
    assert box is not None
    over.hover(position={"x": 1, "y": box["height"] / 2})
    readout = chart.locator(".readout")
    expect(readout).to_contain_text("step 0")
    readings = [re.compile(rf"\b{value}$") for value in ("1", "2", "4")]
    expect(readout.locator(".reading")).to_have_text(readings)
    # Log scale, smoothing and x by time apply to every chart of the page.
    page.locator("input[name=log-scale]").check()
    expect(chart).to_have_attribute("data-scale", "log")
    expect(page.locator(".chart[data-key='accuracy']")).to_have_attribute("data-scale", "log")
    page.locator("input[name=smoothing]").fill("0.9")
    expect(chart).to_have_attribute("data-smoothing", "0.9")
    page.locator("select[name=x-axis]").select_option("time")
    expect(chart).to_have_attribute("data-x", "time")
    over.hover(position={"x": box["width"] - 1, "y": box["height"] / 2})
    expect(readout.locator("b")).to_have_text(re.compile(r" s$"))
    shoot(page, "21-compare-log-smoothed-by-time")


def test_numbers_of_every_size_read_right(pages: Browser) -> None:
    run_id = finished_run(pages.server, {"steps": 3, "summary": SIZES})
    page = pages.signed_in(f"/#/runs/{run_id}")
    expect(page.locator(".page-head .badge")).to_have_text("SUCCEEDED", timeout=LIVE)
    summary = page.locator(".kv-row", has_text="Summary")
    for key, said in SAID.items():
        expect(summary.locator(".chip", has_text=re.compile(f"^{key} "))).to_have_text(f"{key} {said}")
    shoot(page, "22-numbers-of-every-size")


def test_a_long_params_object_leaves_the_runs_table_within_the_page(pages: Browser) -> None:
    long = {f"parameter_{i}": f"a fairly long value number {i}" for i in range(40)}
    run_id = finished_run(pages.server, {"steps": 2, "target_params": long})
    page = pages.signed_in()
    row = row_of(page, run_id)
    expect(row).to_be_visible(timeout=LIVE)
    # Every column is on the page, the last one too; the long value is cut, and whole in its title.
    width = page.evaluate("document.documentElement.clientWidth")
    last = row.locator("td").last.bounding_box()
    assert last is not None and last["x"] + last["width"] <= width
    table = page.locator("table.runs").bounding_box()
    assert table is not None and table["x"] + table["width"] <= width
    chip = row.locator(".chip", has_text="target_params")
    assert "parameter_39" in (chip.get_attribute("title") or "")
    shoot(page, "23-runs-long-params", full_page=False)


def test_checkpoints_of_a_live_run_appear_without_reloading(pages: Browser) -> None:
    wid = workflow_id(pages.server)
    params = {"steps": 100000, "delay": 0.05, "checkpoint_every": 20}
    run_id = str(
        graphql(pages.server, START, {"input": {"workflowId": wid, "params": params}})["startRun"]["id"]
    )
    page = pages.signed_in(f"/#/runs/{run_id}")
    expect(page.locator(".page-head .badge")).to_have_text("RUNNING", timeout=LIVE)
    newest = page.locator("table.artifacts tbody tr[data-kind='checkpoint'] td:nth-child(3)").first
    # No status changes while it runs: the list follows the checkpoints the run saves (retention keeps the
    # last few, so the newest step is what grows).
    expect(newest).to_be_visible(timeout=LIVE)
    first = int(newest.inner_text())
    page.wait_for_function(
        """n => Number(document.querySelector(
            "table.artifacts tbody tr[data-kind='checkpoint'] td:nth-child(3)").textContent) > n""",
        arg=first,
        timeout=LIVE,
    )
    expect(page.locator(".page-head .badge")).to_have_text("RUNNING")
    shoot(page, "24-live-checkpoints")
    page.get_by_role("button", name="Cancel run").click()
    page.get_by_role("button", name="Yes, cancel run").click()
    expect(page.locator(".page-head .badge")).to_have_text("CANCELLED", timeout=LIVE)


def test_a_run_is_named_tagged_and_annotated_from_its_page(pages: Browser) -> None:
    run_id = finished_run(pages.server, {"steps": 2})
    found = graphql(pages.server, "query($id: ID!) { run(id: $id) { name shortId } }", {"id": run_id})["run"]
    page = pages.signed_in(f"/#/runs/{run_id}")
    # The name the server gave it, and the short id the CLI prints.
    expect(page.locator(".page-head h1")).to_contain_text(found["name"])
    expect(page.locator(".page-head .short-id")).to_have_text(found["shortId"])
    labels = page.locator(".kv-row.labels")
    labels.get_by_role("button", name="Edit").click()
    labels.locator("input[name=run-name]").fill("baseline at lr 0.01")
    labels.locator("input[name=run-tags]").fill("baseline, sweep-3")
    labels.locator("textarea[name=run-notes]").fill("kept as the reference\nfor the sweep")
    labels.get_by_role("button", name="Save").click()
    expect(page.locator(".page-head h1")).to_contain_text("baseline at lr 0.01")
    expect(labels.locator(".chip.tag")).to_have_text(["baseline", "sweep-3"])
    expect(labels.locator(".notes")).to_have_text("kept as the reference\nfor the sweep")
    stored = graphql(pages.server, "query($id: ID!) { run(id: $id) { name tags notes } }", {"id": run_id})
    assert stored["run"] == {
        "name": "baseline at lr 0.01",
        "tags": ["baseline", "sweep-3"],
        "notes": "kept as the reference\nfor the sweep",
    }
    shoot(page, "25-run-labels")
    page.click("[data-nav=runs]")
    row = row_of(page, run_id)
    expect(row.locator(".run-name a")).to_have_text("baseline at lr 0.01")
    expect(row.locator(".chip.tag")).to_have_text(["baseline", "sweep-3"])
    expect(row.locator(".run-name .mono")).to_have_text(found["shortId"])
