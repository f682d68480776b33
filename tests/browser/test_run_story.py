"""A run's story on its page after it ended: its output (stored, replayed), its attempts with how and why
each ended, and its artifacts (checkpoints kept by retention and saved files), downloaded with the key."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.browser.conftest import Browser, shoot
from tests.browser.test_dashboard import LIVE, graphql
from tests.e2e.conftest import Server

REGISTER = """mutation($input: RegisterWorkflowInput!) { registerWorkflow(input: $input) { id } }"""
START = """mutation($input: StartRunInput!) { startRun(input: $input) { id } }"""
STATUS = """query($id: ID!) { run(id: $id) { status } }"""
WORKFLOWS = {
    "browser-raises": {"entrypoint": "tests.workflows.sample:raises"},
    "browser-keeps": {
        "entrypoint": "tests.workflows.artifacts:keeps",
        "paramsSchema": {
            "type": "object",
            "properties": {"steps": {"type": "integer"}, "best": {"type": "integer"}},
        },
        "defaults": {"steps": 6, "best": 1},
    },
}


def ended_run(server: Server, name: str, params: dict[str, Any] | None = None) -> str:
    wid = graphql(server, REGISTER, {"input": {"name": name, **WORKFLOWS[name]}})["registerWorkflow"]["id"]
    run_id = str(
        graphql(server, START, {"input": {"workflowId": wid, "params": params or {}}})["startRun"]["id"]
    )
    deadline = time.monotonic() + LIVE / 1000
    while graphql(server, STATUS, {"id": run_id})["run"]["status"] not in (
        "SUCCEEDED",
        "FAILED",
        "CANCELLED",
    ):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    return run_id


def test_a_failed_run_shows_its_output_and_attempts_after_the_end(pages: Browser) -> None:
    run_id = ended_run(pages.server, "browser-raises")
    # Opened only after the end: what it printed was stored, not just streamed.
    page = pages.signed_in(f"/#/runs/{run_id}")
    expect(page.locator(".page-head .badge")).to_have_text("FAILED", timeout=LIVE)
    expect(page.locator("ol.log")).to_contain_text("about to fail")
    expect(page.locator("ol.log .stderr").first).to_be_visible()
    attempts = page.locator("table.attempts tbody tr")
    expect(attempts).to_have_count(1)
    expect(attempts.first).to_have_attribute("data-outcome", "FAILED")
    expect(attempts.first.locator(".reason")).to_contain_text("boom")
    shoot(page, "26-run-failed-story")


def test_artifacts_are_listed_and_downloaded(pages: Browser, tmp_path: Path) -> None:
    run_id = ended_run(pages.server, "browser-keeps")
    page = pages.signed_in(f"/#/runs/{run_id}")
    expect(page.locator(".page-head .badge")).to_have_text("SUCCEEDED", timeout=LIVE)
    stored = graphql(
        pages.server, "query($id: ID!) { run(id: $id) { artifacts { name kind } } }", {"id": run_id}
    )
    names = sorted(a["name"] for a in stored["run"]["artifacts"])
    rows = page.locator("table.artifacts tbody tr")
    expect(rows).to_have_count(len(names))
    expect(page.locator("table.artifacts tr[data-kind='checkpoint']").first).to_be_visible()
    notes = page.locator("table.artifacts tr[data-artifact='notes.txt']")
    with page.expect_download() as started:
        notes.get_by_role("button", name="Download").click()
    saved = tmp_path / "notes.txt"
    started.value.save_as(saved)
    assert saved.read_bytes() == b"what this run learned\n"
    shoot(page, "27-run-artifacts")
