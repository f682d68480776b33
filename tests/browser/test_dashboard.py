"""The dashboard and GraphiQL in a real browser: sign in, watch runs live, start and cancel runs, optimize."""

from __future__ import annotations

import re
import time
import uuid
from base64 import b64encode
from typing import Any

import httpx
from playwright.sync_api import Page, Route, expect

from tests.browser.conftest import Browser, shoot
from tests.e2e.conftest import Server

LIVE = 30_000  # ms a run may take to reach a status the test waits for


def graphql(server: Server, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    response = httpx.post(
        f"{server.url}/graphql",
        json={"query": query, "variables": variables or {}},
        headers={"Authorization": f"Bearer {server.key}"},
        timeout=30,
    )
    body = response.json()
    assert not body.get("errors"), body["errors"]
    return dict(body["data"])


def start_run(server: Server, workflow: str, params: dict[str, Any]) -> str:
    found = graphql(server, "query($n: String!) { workflow(name: $n) { id } }", {"n": workflow})
    wid = found["workflow"]["id"]
    started = graphql(
        server,
        "mutation($input: StartRunInput!) { startRun(input: $input) { id } }",
        {"input": {"workflowId": wid, "params": params}},
    )
    return str(started["startRun"]["id"])


def chart_points(page: Page, key: str) -> int:
    return int(page.get_attribute(f".chart[data-key='{key}']", "data-points") or 0)


def wait_for_more_points(page: Page, key: str, than: int) -> int:
    page.wait_for_function(
        "([key, than]) => Number(document.querySelector(`.chart[data-key='${key}']`)?.dataset.points) > than",
        arg=[key, than],
        timeout=LIVE,
    )
    return chart_points(page, key)


def test_signing_in_needs_a_valid_key(pages: Browser) -> None:
    page = pages.page()
    page.goto(pages.server.url + "/")
    shoot(page, "01-sign-in")
    page.fill("input[name=key]", "ptw_000000000000_forged")
    page.click("button[type=submit]")
    expect(page.locator(".alert")).to_contain_text("not accepted")
    assert page.evaluate("sessionStorage.getItem('ptw.key')") is None


def test_a_run_started_through_the_api_appears_and_its_chart_grows_live(pages: Browser) -> None:
    page = pages.signed_in()
    expect(page.locator(".page-head h1")).to_have_text("Runs")
    # Long enough to be watched (~23 steps an epoch, ~20 epochs a second on a CPU), short enough to finish.
    run_id = start_run(pages.server, "digits-mlp", {"epochs": 150, "hidden": 32})
    row = page.locator(f"tr[data-run-id='{run_id}']")
    expect(row).to_be_visible(timeout=LIVE)  # pushed by projectRuns: the page was not reloaded
    expect(row.locator(".badge")).to_have_text(re.compile("QUEUED|STARTING|RUNNING"))
    expect(row).to_contain_text("digits-mlp")
    expect(row).to_contain_text("epochs 150")
    expect(row.locator(".badge")).to_have_text("RUNNING", timeout=LIVE)
    shoot(page, "02-runs-live")

    row.click()
    expect(page.locator(".page-head .badge")).to_have_text("RUNNING", timeout=LIVE)
    first = wait_for_more_points(page, "train_loss", 0)
    grown = wait_for_more_points(page, "train_loss", first)
    assert grown > first
    # Dropped connection: the stream resumes from its cursor and keeps growing.
    page.evaluate("window.ptw.dropConnection()")
    wait_for_more_points(page, "train_loss", grown)
    shoot(page, "03-run-live-charts")
    # A second tab on the run: each batch is executed for the first of the two and sent to the other
    # straight from its resolver (api/shared_events.py); both must end with every point, once.
    second = pages.signed_in(f"/#/runs/{run_id}")
    wait_for_more_points(second, "train_loss", wait_for_more_points(second, "train_loss", 0))

    expect(page.locator(".page-head .badge")).to_have_text("SUCCEEDED", timeout=90_000)
    series = graphql(
        pages.server,
        'query($id: ID!) { run(id: $id) { metrics(key: "val_loss", maxPoints: 100000) { total } } }',
        {"id": run_id},
    )["run"]["metrics"]
    # One point per epoch, fewer than the history's maxPoints: history plus live is every point, once.
    for tab in (page, second):
        tab.wait_for_function(
            "n => Number(document.querySelector(\".chart[data-key='val_loss']\").dataset.points) === n",
            arg=series["total"],
        )
    expect(page.locator(".log")).to_contain_text("SUCCEEDED")
    expect(
        page.locator("table.artifacts tr[data-kind='checkpoint']").first
    ).to_be_visible()  # its checkpoints
    shoot(page, "04-run-succeeded")


def test_a_run_started_from_the_form(pages: Browser) -> None:
    page = pages.signed_in("/#/new/digits-mlp")
    form = page.locator("form.form")
    expect(form.locator("select[name=workflow]")).to_have_value(re.compile(".+"))
    # Defaults of the schema fill the form; enum params are choices.
    expect(form.locator("input[name=lr]")).to_have_value("0.01")
    expect(form.locator("select[name=optimizer] option")).to_have_text(["adam", "sgd"])
    form.locator("input[name=epochs]").fill("3")
    form.locator("select[name=optimizer]").select_option(label="sgd")
    shoot(page, "05-start-form")
    form.locator("button[type=submit]").click()

    page.wait_for_url(re.compile(r"#/runs/"))
    expect(page.locator(".page-head .badge")).to_have_text("SUCCEEDED", timeout=LIVE)
    expect(page.locator(".chart[data-key='val_accuracy']")).to_be_visible()
    expect(page.locator(".kv-row").first).to_contain_text("optimizer sgd")

    page.click("[data-nav=runs]")
    expect(page.locator("tbody tr").first).to_contain_text("epochs 3")


def test_cancelling_a_long_run_from_its_page(pages: Browser) -> None:
    page = pages.signed_in("/#/new/tiny-lm")
    page.locator("input[name=steps]").fill("100000")
    page.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(r"#/runs/"))
    expect(page.locator(".page-head .badge")).to_have_text("RUNNING", timeout=LIVE)
    wait_for_more_points(page, "loss", 0)
    # Cancelling asks first: saying no keeps the run going.
    page.get_by_role("button", name="Cancel run").click()
    expect(page.get_by_role("alertdialog")).to_contain_text("Stop this run?")
    page.get_by_role("button", name="Keep running").click()
    expect(page.get_by_role("alertdialog")).to_have_count(0)
    expect(page.locator(".page-head .badge")).to_have_text("RUNNING")
    page.get_by_role("button", name="Cancel run").click()
    page.get_by_role("button", name="Yes, cancel run").click()
    expect(page.locator(".page-head .badge")).to_have_text("CANCELLED", timeout=LIVE)
    expect(page.get_by_role("button", name="Cancel run")).to_have_count(0)
    shoot(page, "06-run-cancelled")


def test_the_optimizations_page_with_none_yet(pages: Browser) -> None:
    page = pages.signed_in("/#/optimizations")
    expect(page.locator(".page-head h1")).to_have_text("Optimizations")
    expect(page.locator(".empty, table tbody tr").first).to_be_visible()
    shoot(page, "07-optimizations")


def optimization_id() -> str:
    return b64encode(f"Optimization:{uuid.uuid4()}".encode()).decode()


def search_result(trial: int, state: str, value: float | None, lr: float, hidden: int) -> dict[str, Any]:
    return {
        "id": b64encode(f"OptimizationResult:{uuid.UUID(int=trial)}".encode()).decode(),
        "config": {"lr": lr, "hidden": hidden},
        "value": value,
        "state": state,
        "metrics": {"epochs": 20 if state == "COMPLETE" else 4},
        "createdAt": "2026-01-01T10:00:00+00:00",
        "run": None,
    }


def optimization(kind: str, results: list[dict[str, Any]], best: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "id": optimization_id(),
        "kind": kind,
        "status": "SUCCEEDED",
        "objective": "val_accuracy" if kind == "HYPERPARAMETER_SEARCH" else "tokens_per_s",
        "direction": "MAXIMIZE",
        "space": {"lr": {"low": 0.0001, "high": 0.1, "log": True}, "hidden": [32, 64, 128]},
        "sampler": "tpe",
        "pruner": "median",
        "maxTrials": len(results),
        "maxParallel": 2,
        "error": None,
        "createdAt": "2026-01-01T10:00:00+00:00",
        "finishedAt": "2026-01-01T10:05:00+00:00",
        "workflow": {"name": "digits-mlp" if kind == "HYPERPARAMETER_SEARCH" else "tiny-lm"},
        "best": best,
        "results": {"edges": [{"node": result} for result in results]},
    }


def answer_optimization(page: Page, detail: dict[str, Any]) -> None:
    """The server has no optimization to show yet: the page's detail query is answered with ``detail``.
    Only that query is answered here; everything else reaches the real server."""

    def handle(route: Route) -> None:
        body = route.request.post_data or ""
        if "query Optimization(" in body:
            route.fulfill(json={"data": {"optimization": detail}})
        else:
            route.fallback()

    page.route("**/graphql", handle)


def test_an_optimization_shows_its_trials_best_and_pruned(pages: Browser) -> None:
    results = [
        search_result(1, "COMPLETE", 0.91, 0.001, 32),
        search_result(2, "PRUNED", 0.62, 0.08, 32),
        search_result(3, "COMPLETE", 0.965, 0.01, 128),
        search_result(4, "COMPLETE", 0.94, 0.003, 64),
        search_result(5, "PRUNED", 0.7, 0.05, 64),
        search_result(6, "RUNNING", None, 0.02, 128),
    ]
    detail = optimization("HYPERPARAMETER_SEARCH", results, results[2])
    page = pages.signed_in()
    answer_optimization(page, detail)
    page.goto(f"{pages.server.url}/#/optimizations/{detail['id']}")
    table = page.locator("table.results tbody tr")
    expect(table).to_have_count(6)
    expect(page.locator("tr.pruned")).to_have_count(2)
    expect(page.locator("tr.best")).to_contain_text("0.965")
    expect(page.locator(".kv-row.best")).to_contain_text("0.965")
    # Learning curves, objective by trial, parallel coordinates, importance, then against each parameter.
    expect(page.locator(".chart h3")).to_have_text(
        [
            "Learning curves: val_accuracy",
            "Objective by trial",
            "Parallel coordinates",
            "Parameter importance",
            "Objective against lr",
            "Objective against hidden",
        ]
    )
    # lr is searched on a log scale: its axes are log axes.
    expect(page.locator(".chart", has_text="Objective against lr")).to_have_attribute("data-x-scale", "log")
    expect(page.locator(".chart", has_text="Objective against hidden")).to_have_attribute(
        "data-x-scale", "linear"
    )
    expect(page.locator(".parallel g.axis[data-axis='lr']")).to_have_class(re.compile(r"\blog\b"))
    expect(page.locator(".parallel polyline.trial")).to_have_count(5)  # every trial with a value
    expect(page.locator(".parallel polyline.trial.pruned")).to_have_count(2)
    shoot(page, "08-optimization-search")


def variant(name: str, **settings: Any) -> dict[str, Any]:
    """A tuning result's config as the tuner stores it: every setting, null or false where it is off."""
    off = {"compile": None, "amp": None, "channels_last": False, "tf32": False, "threads": None}
    return {"variant": name, "batch_size": 64, **off, **settings}


def test_a_tuning_shows_speedups_as_bars(pages: Browser) -> None:
    variants = [(variant("eager-fp32"), 1.0), (variant("compile", compile="default"), 1.6)]
    variants.append((variant("combined", compile="default", amp="bf16"), 2.3))
    variants.append((variant("amp-bf16", amp="bf16"), 0.9))
    results = [
        {**search_result(i, "COMPLETE", 1000 * x, 0, 0), "config": config, "metrics": {"speedup": x}}
        for i, (config, x) in enumerate(variants, 1)
    ]
    detail = optimization("PERFORMANCE_TUNING", results, results[2])
    page = pages.signed_in()
    answer_optimization(page, detail)
    page.goto(f"{pages.server.url}/#/optimizations/{detail['id']}")
    bars = page.locator(".bar-row")
    expect(bars).to_have_count(4)
    expect(bars.first.locator(".bar-value")).to_have_text("2.3\N{MULTIPLICATION SIGN}")  # fastest first
    expect(page.locator(".bar.slower")).to_have_count(1)
    # A variant reads as its name and the settings it has; the null and false ones are left out.
    label = bars.first.locator(".bar-label")
    expect(label.locator(".variant-name")).to_have_text("combined")
    expect(label.locator(".chip")).to_have_text(["batch_size 64", "compile default", "amp bf16"])
    expect(page.locator(".variant", has_text="null")).to_have_count(0)
    # The speedup stands next to the throughput in the results.
    expect(page.locator("table.results thead th")).to_have_text(
        ["#", "State", "Throughput", "Speedup", "Variant", "Metrics", "Run"]
    )
    fastest = page.locator("table.results tbody tr", has_text="combined")
    expect(fastest.locator("td").nth(2)).to_have_text("2,300/s")
    expect(fastest.locator("td.speedup")).to_have_text("2.3\N{MULTIPLICATION SIGN}")
    shoot(page, "09-optimization-tuning")


def test_the_executor_pool(pages: Browser) -> None:
    page = pages.signed_in("/#/executors")
    expect(page.locator(".stat").first).to_contain_text("Workers")
    expect(page.locator(".stat strong").first).to_have_text("2")
    expect(page.locator("tbody tr")).to_have_count(2)
    shoot(page, "10-executors")


def test_graphiql_from_local_files_with_the_key_filled_in(pages: Browser) -> None:
    page = pages.signed_in("/graphql")
    expect(page.locator(".graphiql-container")).to_be_visible()
    headers = page.locator(".graphiql-editor-tool .graphiql-editor").last
    expect(headers).to_contain_text(f"Bearer {pages.server.key}")
    page.locator(".graphiql-execute-button").click()
    result = page.locator(".result-window")
    expect(result).to_contain_text('"viewer"')
    expect(result).to_contain_text('"digits-mlp"')
    expect(result).to_contain_text('"role": "ADMIN"')
    shoot(page, "11-graphiql", full_page=False)


def test_a_real_search_shows_every_trial_its_best_and_its_pruned_trials(pages: Browser) -> None:
    from tests.e2e.test_optimizations import REGISTER, SPACE, START, WORKFLOW

    server = pages.server
    workflow = graphql(server, REGISTER, {"input": {**WORKFLOW, "name": "browser-quadratic"}})
    search = {
        "workflowId": workflow["registerWorkflow"]["id"],
        "kind": "HYPERPARAMETER_SEARCH",
        "objective": "objective",
        "direction": "MAXIMIZE",
        "space": SPACE,
        "sampler": "tpe",
        "pruner": "median",
        "maxTrials": 6,
        "maxParallel": 2,
    }
    started = graphql(server, START, {"input": search})["startOptimization"]
    query = """query($id: ID!) { optimization(id: $id) { status
        results(first: 100) { edges { node { id number state value } } } best { id value } } }"""
    deadline = time.monotonic() + 120
    while (done := graphql(server, query, {"id": started["id"]})["optimization"])["status"] not in (
        "SUCCEEDED",
        "FAILED",
    ):
        assert time.monotonic() < deadline, done
        time.sleep(0.5)
    assert done["status"] == "SUCCEEDED"
    results = [edge["node"] for edge in done["results"]["edges"]]
    pruned = sum(1 for r in results if r["state"] == "PRUNED")

    page = pages.signed_in()
    page.goto(f"{server.url}/#/optimizations/{started['id']}")
    expect(page.locator("table.results tbody tr")).to_have_count(len(results))
    expect(page.locator("tr.pruned")).to_have_count(pruned)
    expect(page.locator("tr.best")).to_have_count(1)
    # One numbering: the table's trial numbers are the API's (and the CLI's), from 0.
    shown = page.locator("table.results tbody tr td:first-child").all_inner_texts()
    assert sorted(int(text.strip(" ★")) for text in shown) == sorted(r["number"] for r in results)
    assert 0 in [r["number"] for r in results]
    # Every trial's learning curve on one chart, the pruned ones marked where they stopped.
    curves = page.locator(".chart[data-key='learning-curves']")
    expect(curves).to_have_attribute("data-trials", str(len(results)))
    expect(curves).to_have_attribute("data-pruned", str(pruned))
    expect(page.locator(".parallel polyline.trial")).to_have_count(len(results))
    complete = sum(1 for r in results if r["state"] == "COMPLETE")
    importance = page.locator(".importance")
    if complete >= 3:  # fANOVA's minimum
        expect(importance.locator(".bar-row[data-param='x'] .bar-value")).to_have_text("100%")
    else:
        expect(importance).to_contain_text("at least three complete trials")
    shoot(page, "12-optimization-real-search")
