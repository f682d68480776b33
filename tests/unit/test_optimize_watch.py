"""`ptw optimize --watch`'s trial table: a trial whose run waits in the queue reads QUEUED, not RUNNING."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from ptw.optimize import TrialTable

OPTIMIZATION = {"id": "o", "status": "RUNNING", "error": None, "objective": "loss", "direction": "MINIMIZE"}


def event(progress: str, run_status: str, **extra: Any) -> dict[str, Any]:
    result = {"id": "r0", "number": 0, "state": "RUNNING", "value": None, "config": {"x": 1}, "metrics": None}
    result["run"] = {"status": run_status}
    return {"progress": progress, "optimization": OPTIMIZATION, "result": result, **extra}


def trial_row(table: TrialTable) -> str:
    console = Console(record=True, width=120)
    console.print(table.render())
    return next(line for line in console.export_text().splitlines() if '{"x": 1}' in line)


def test_a_queued_trial_reads_queued_until_its_run_runs() -> None:
    table = TrialTable("o")
    table.on_event(event("TRIAL_STARTED", "QUEUED"))
    assert "QUEUED" in trial_row(table) and "RUNNING" not in trial_row(table)
    table.on_event(event("TRIAL_REPORTED", "RUNNING", step=3, value=0.5))
    assert "RUNNING" in trial_row(table) and "QUEUED" not in trial_row(table)
    assert "0.5 @3" in trial_row(table)
