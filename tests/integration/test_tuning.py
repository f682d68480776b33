"""The ptw-tuner built-in run end to end: services on SQLite, a real executor child, a digits-cnn tuning."""

from __future__ import annotations

from ptw.domain.runs import RunStatus
from ptw.domain.tenancy import Actor
from ptw.executors.pool import LocalExecutorPool
from ptw.infra.bootstrap import Services
from tests.fixtures.runs import finished

METRIC_KEYS = {
    "throughput",
    "step_ms_p50",
    "peak_memory_mb",
    "max_abs_diff",
    "output_max_abs_diff",
    "speedup",
}


async def test_a_tuning_run_of_digits_cnn_succeeds_with_complete_variants(
    services: Services, actor: Actor, pool: LocalExecutorPool
) -> None:
    tuner = await services.workflows.get_by_name(actor, "ptw-tuner")
    params = {
        "target": "digits-cnn",
        "target_params": {"channels": 8},
        # No compile variant: inductor compiles for tens of seconds on a cold cache.
        "variants": ["channels-last", "amp-bf16", "batch-size"],
        "batch_sizes": [128],
        "steps": 9,
        "warmup": 1,
    }
    run = await services.runs.start_run(actor, tuner.id, params=params)
    run = await finished(services, actor, run.id, within=90)

    assert run.status is RunStatus.SUCCEEDED, run.error
    summary = run.summary
    assert summary is not None and summary["target"] == "digits-cnn" and summary["device"] == "cpu"
    rows = {row["name"]: row for row in summary["variants"]}
    assert list(rows)[:4] == ["eager-fp32", "channels-last", "amp-bf16", "batch-size-128"]
    complete = [row for row in rows.values() if row["state"] == "COMPLETE"]
    assert len(complete) >= 3
    for row in complete:
        assert METRIC_KEYS <= set(row["metrics"]) and row["value"] == row["metrics"]["throughput"] > 0
    assert rows["eager-fp32"]["metrics"]["speedup"] == 1.0
    assert rows["eager-fp32"]["config"]["batch_size"] == 64  # digits-cnn's default, the baseline's size
    assert summary["best"] in rows and rows[summary["best"]]["state"] == "COMPLETE"
    # Live progress reached the metric store: one variant_index point per variant.
    progress = await services.metrics.series_of(run.id, "variant_index")
    assert sorted(p.step for p in progress.points) == list(range(len(rows)))
