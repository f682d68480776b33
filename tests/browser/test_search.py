"""A search started from the web UI, its space edited in the form, and its page at the level of
optuna-dashboard: every trial's learning curve, parallel coordinates with a log axis for the log-scale
parameter, the parameters' importance (Optuna's fANOVA, from the API) and the objective against each."""

from __future__ import annotations

import re
from urllib.parse import unquote

from playwright.sync_api import Page, expect

from tests.browser.conftest import Browser, shoot
from tests.browser.test_dashboard import graphql
from tests.e2e.test_optimizations import REGISTER, WORKFLOW

SEARCH_TIME = 150_000  # ms: eight short trials, two at a time, on a loaded machine
RESULTS = """query($id: ID!) { optimization(id: $id) { status importance
  results(first: 100) { edges { node { number state } } } } }"""


def tick(page: Page, name: str, low: str, high: str, log: bool = False) -> None:
    row = page.locator(f"tr[data-param='{name}']")
    row.locator(f"input[name='search-{name}']").check()
    row.locator(f"select[name='type-{name}']").select_option("float")
    row.locator(f"input[name='low-{name}']").fill(low)
    row.locator(f"input[name='high-{name}']").fill(high)
    row.locator(f"input[name='log-{name}']").set_checked(log)


def test_a_search_started_from_the_form_and_its_page(pages: Browser) -> None:
    server = pages.server
    graphql(server, REGISTER, {"input": {**WORKFLOW, "name": "browser-form-search"}})
    page = pages.signed_in("/#/optimizations")
    page.get_by_role("link", name="Start a search").click()
    page.wait_for_url(re.compile(r"#/optimize"))
    page.locator("select[name=workflow]").select_option(label="browser-form-search")
    form = page.locator("form.form")
    expect(form.locator("tr[data-param]")).to_have_count(3)  # x, steps, delay: the workflow's schema
    form.locator("input[name=objective]").fill("objective")
    form.locator("select[name=direction]").select_option("MAXIMIZE")
    form.locator("input[name=maxTrials]").fill("8")
    form.locator("input[name=maxParallel]").fill("2")
    # A mistake in the space is refused by the server, and the form marks where.
    tick(page, "x", "8", "-2")
    tick(page, "delay", "0.005", "0.05", log=True)
    form.locator("button[type=submit]").click()
    expect(form.locator(".alert")).to_contain_text("high must not be below low")
    expect(form.locator("input[name='high-x']")).to_have_class(re.compile("invalid"))
    shoot(page, "30-search-form-refused")
    tick(page, "x", "-2", "8")
    form.locator("button[type=submit]").click()

    page.wait_for_url(re.compile(r"#/optimizations/.+"))
    expect(page.locator(".page-head h1")).to_have_text("Hyperparameter search of browser-form-search")
    expect(page.locator(".page-head .badge")).to_have_text("SUCCEEDED", timeout=SEARCH_TIME)
    optimization_id = unquote(page.url.split("#/optimizations/")[1])
    done = graphql(server, RESULTS, {"id": optimization_id})["optimization"]
    results = [edge["node"] for edge in done["results"]["edges"]]
    assert len(results) == 8
    space = graphql(server, "query($id: ID!) { optimization(id: $id) { space } }", {"id": optimization_id})
    assert space["optimization"]["space"] == {
        "x": {"type": "float", "low": -2, "high": 8},
        "delay": {"type": "float", "low": 0.005, "high": 0.05, "log": True},
    }

    # The page follows the search live: once it ended, every trial is there.
    expect(page.locator("table.results tbody tr")).to_have_count(8, timeout=10_000)
    curves = page.locator(".chart[data-key='learning-curves']")
    expect(curves).to_have_attribute("data-trials", "8")
    pruned = sum(1 for r in results if r["state"] == "PRUNED")
    expect(curves).to_have_attribute("data-pruned", str(pruned))
    # Parallel coordinates: an axis per parameter and the objective; delay's axis is a log axis.
    parallel = page.locator(".parallel")
    expect(parallel).to_have_attribute("data-axes", "3")
    expect(parallel.locator("g.axis[data-axis='delay']")).to_have_class(re.compile(r"\blog\b"))
    expect(parallel.locator("g.axis[data-axis='x']")).not_to_have_class(re.compile(r"\blog\b"))
    expect(parallel.locator("polyline.trial")).to_have_count(8)
    expect(page.locator(".chart", has_text="Objective against delay")).to_have_attribute(
        "data-x-scale", "log"
    )
    expect(page.locator(".chart", has_text="Objective against x")).to_have_attribute("data-x-scale", "linear")
    # Importance as the API computes it: x (the objective depends on nothing else) comes first.
    # Importance as the API computes it (its ranking from a handful of trials is Optuna's to judge; the unit
    # tests check that it finds the parameter that matters): the page shows it in the API's order.
    importance = done["importance"]
    if sum(1 for r in results if r["state"] == "COMPLETE") >= 3:
        assert set(importance) == {"x", "delay"}
        rows = page.locator(".importance .bar-row")
        expect(rows).to_have_count(2)
        assert [rows.nth(i).get_attribute("data-param") for i in range(2)] == list(importance)
    shoot(page, "31-search-page")

    # Hovering the learning curves reads the trials' values at that step.
    over = curves.locator(".u-over")
    box = over.bounding_box()
    assert box is not None
    over.hover(position={"x": 2, "y": box["height"] / 2})
    expect(curves.locator(".readout .reading").first).to_contain_text("trial ")

    # The best trials' runs (up to three) open side by side.
    best = min(3, sum(1 for r in results if r["state"] == "COMPLETE"))
    if best >= 2:
        page.locator(".compare-best").click()
        expect(page.locator(".page-head h1")).to_have_text(f"Comparing {best} runs")
        expect(page.locator("tr[data-row='Params:x']")).to_have_class(re.compile("differs"))
        expect(page.locator(".chart[data-key='objective']")).to_have_attribute("data-series", str(best))


TUNE = {
    "kind": "PERFORMANCE_TUNING",
    "params": {"channels": 8},
    # Variants that need no compiling (inductor takes tens of seconds on a cold cache), measured long
    # enough to be watched while they are.
    "space": {"variants": ["channels-last", "amp-bf16", "batch-size"], "batch_sizes": [128], "steps": 40},
}


def test_a_tuning_shows_each_variant_while_it_measures(pages: Browser) -> None:
    server = pages.server
    found = graphql(server, 'query { workflow(name: "digits-cnn") { id } }')["workflow"]
    started = graphql(
        server,
        "mutation($input: StartOptimizationInput!) { startOptimization(input: $input) { id } }",
        {"input": {**TUNE, "workflowId": found["id"]}},
    )["startOptimization"]
    page = pages.signed_in(f"/#/optimizations/{started['id']}")
    measuring = page.locator(".measuring")
    # Before the tuner's summary there are no results, yet each measured variant is shown as it completes.
    expect(measuring).to_be_visible(timeout=60_000)
    expect(measuring.locator("tbody tr").first).to_be_visible(timeout=120_000)
    expect(measuring.locator("tbody tr").first.locator("td").nth(2)).to_contain_text("samples/s")
    planned = measuring.get_attribute("data-planned")
    assert planned == "4"  # the baseline, then channels-last, amp-bf16 and batch-size-128
    expect(measuring).to_contain_text(re.compile(r"\d+ of \d+ measured"))
    shoot(page, "32-tuning-measuring")
    # Once the tuner ends, its variants are results: speedups as bars, next to the throughput in the table.
    expect(page.locator(".page-head .badge")).to_have_text("SUCCEEDED", timeout=240_000)
    expect(page.locator(".bar-row").first).to_be_visible()
    expect(page.locator("table.results td.speedup").first).to_contain_text("\N{MULTIPLICATION SIGN}")
    expect(page.locator(".variant", has_text="null")).to_have_count(0)
    shoot(page, "33-tuning-done")
