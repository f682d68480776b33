"""The two logging processes of ``bench.client_ingest``, each run in its own interpreter:

    python -m bench.client_loggers ptw URL KEY KEYS STEPS       # the project's venv: ptw.init
    python bench/client_loggers.py mlflow URL KEYS STEPS        # MLflow's own venv: log_batch, 1,000 a call

Each prints ``STARTED <unix time>`` just before it creates its run, then ``RUN <id>`` and ``LOGGED <unix
time>`` once its last call returned (for ptw: once ``finish`` has sent everything)."""

from __future__ import annotations

import sys
import time

BATCH = 1000  # MLflow's log_batch takes at most 1,000 metrics a call


def with_ptw(url: str, key: str, keys: int, steps: int) -> None:
    import ptw
    import ptw.tracking  # imported before the clock starts, as MLflow is

    names = [f"k{i}" for i in range(keys)]
    print(f"STARTED {time.time()}", flush=True)
    run = ptw.init(name="bench-client-ingest", params={"keys": keys, "steps": steps}, url=url, api_key=key)
    print(f"RUN {run.id}", flush=True)
    for step in range(steps):
        run.log({name: step * 0.001 + i for i, name in enumerate(names)}, step=step)
    run.finish()
    print(f"LOGGED {time.time()}", flush=True)


def with_mlflow(url: str, keys: int, steps: int) -> None:
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=url)
    experiment = client.create_experiment(f"bench-{time.time_ns()}")
    print(f"STARTED {time.time()}", flush=True)
    run = client.create_run(experiment)
    print(f"RUN {run.info.run_id}", flush=True)
    batch: list[Metric] = []
    now_ms = int(time.time() * 1000)
    for step in range(steps):
        for i in range(keys):
            batch.append(Metric(f"k{i}", step * 0.001 + i, now_ms, step))
        if len(batch) >= BATCH:
            client.log_batch(run.info.run_id, metrics=batch)
            batch = []
    if batch:
        client.log_batch(run.info.run_id, metrics=batch)
    client.set_terminated(run.info.run_id)
    print(f"LOGGED {time.time()}", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "ptw":
        with_ptw(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    else:
        with_mlflow(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
