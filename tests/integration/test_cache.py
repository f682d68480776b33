"""The Redis read cache over the real PostgreSQL and Redis: hits without SQL, one MGET per batch, no stale
read after any write path, no run served from cache while it runs, tenants kept apart, Redis outages."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any, cast

import httpx
import pytest
from redis.asyncio import Redis

from ptw.api.app import create_app
from ptw.domain.errors import Conflict, NotFound
from ptw.domain.metrics import MetricBatch, MetricPoint, series_of_points
from ptw.domain.runs import Run, RunStatus
from ptw.domain.services import (
    AccessService,
    ExecutionService,
    MetricService,
    Outcome,
    RunService,
    WorkflowService,
)
from ptw.domain.tenancy import Actor, Role
from ptw.infra.bootstrap import Services, bootstrap, builtin_specs
from ptw.infra.cache import CachingUnitOfWorkFactory, caching_uow_factory
from ptw.infra.db import Database
from ptw.infra.live.memory_bus import InMemoryEventBus
from ptw.infra.params_validator import JsonSchemaValidator
from ptw.infra.queue.memory_queue import InMemoryJobQueue
from ptw.infra.settings import Settings
from tests.fixtures.databases import fresh_postgres_url, migrated_database
from tests.fixtures.graphql_client import GraphQL, issue_key

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

REDIS_URL = os.environ.get("PTW_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
TOMBSTONE_TTL = 0.3  # short, so tests can wait for the tombstones of a write to expire
CLOSED_PORT_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1


class CountingRedis(Redis):
    """A real client that remembers the name of every command sent outside pipelines."""

    commands: list[str]

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        self.commands.append(str(args[0]).upper())
        return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]


async def connect(url: str) -> CountingRedis:
    redis = cast(CountingRedis, CountingRedis.from_url(url))
    redis.commands = []
    return redis


async def drop_keys(redis: Redis, prefix: str) -> None:
    for pattern in (f"{prefix}:*", f"arq:*{prefix}:*"):
        keys = [k async for k in redis.scan_iter(match=pattern, count=1000)]
        if keys:
            await redis.delete(*keys)


@pytest.fixture
async def redis() -> AsyncIterator[tuple[CountingRedis, str]]:
    client = await connect(REDIS_URL)
    try:
        await client.ping()
    except Exception as e:  # a missing Redis fails these tests: it is part of the test machines
        await client.aclose()
        pytest.fail(f"Redis at {REDIS_URL} is unreachable: {e!r}")
    prefix = f"ptw-test-{secrets.token_hex(6)}"
    try:
        yield client, prefix
    finally:
        await drop_keys(client, prefix)
        await client.aclose()


@pytest.fixture
async def database() -> AsyncIterator[Database]:
    async with fresh_postgres_url() as url, migrated_database(url) as database:
        yield database


@dataclass
class Wired:
    """The domain services over the caching unit of work (no executors, queue or bus of Redis needed)."""

    database: Database
    uow: CachingUnitOfWorkFactory
    redis: CountingRedis
    access: AccessService
    workflows: WorkflowService
    runs: RunService
    execution: ExecutionService
    metrics: MetricService

    @property
    def stats(self) -> dict[str, dict[str, int]]:
        return self.uow.cache.stats.snapshot()

    async def statements(self, read: Any) -> tuple[Any, int]:
        before = self.database.statements
        result = await read
        return result, self.database.statements - before

    async def settle(self) -> None:
        """Let the tombstones of earlier writes expire, so reads may fill the cache again."""
        await asyncio.sleep(TOMBSTONE_TTL + 0.1)


def wire(database: Database, redis: CountingRedis, prefix: str) -> Wired:
    uow = caching_uow_factory(database.uow_factory(), redis, prefix)
    uow.cache.tombstone_ms = int(TOMBSTONE_TTL * 1000)
    bus, validator = InMemoryEventBus(), JsonSchemaValidator()
    return Wired(
        database=database,
        uow=uow,
        redis=redis,
        access=AccessService(uow),
        workflows=WorkflowService(uow, validator),
        runs=RunService(uow, bus, InMemoryJobQueue(), validator),
        execution=ExecutionService(uow, bus),
        metrics=MetricService(uow, bus),
    )


@pytest.fixture
async def wired(database: Database, redis: tuple[CountingRedis, str]) -> Wired:
    w = wire(database, *redis)
    await w.workflows.install_builtins(builtin_specs())
    await w.settle()
    return w


async def actor_of(w: Wired, project: str) -> Actor:
    issued = await w.access.bootstrap_key(project, Role.ADMIN)
    return Actor(key_id=issued.key.id, roles={issued.project.id: Role.ADMIN})


async def finished_run(w: Wired, actor: Actor, summary: dict[str, Any] | None = None) -> Run:
    workflow = await w.workflows.get_by_name(actor, "digits-mlp")
    run = await w.runs.start_run(actor, workflow.id)
    assert await w.execution.claim(run.id, 1, "executor-1") is not None
    await w.execution.mark_running(run.id, 1, "cpu")
    done = await w.execution.finish(run.id, 1, Outcome(RunStatus.SUCCEEDED, summary=summary or {"acc": 0.9}))
    assert done is not None and done.status is RunStatus.SUCCEEDED
    return done


# --- hits ---------------------------------------------------------------------------------------------


async def test_a_second_read_of_a_workflow_is_a_cache_hit_without_sql(wired: Wired) -> None:
    actor = await actor_of(wired, "alpha")
    builtin = await wired.workflows.get_by_name(actor, "digits-mlp")
    first, first_sql = await wired.statements(wired.workflows.get(actor, builtin.id))
    second, second_sql = await wired.statements(wired.workflows.get(actor, builtin.id))
    assert first_sql == 1 and second_sql == 0
    assert second == first == builtin
    assert wired.stats["hits"]["workflow"] == 1


async def test_get_many_of_50_finished_runs_is_one_mget_and_then_no_sql(wired: Wired) -> None:
    actor = await actor_of(wired, "alpha")
    runs = [await finished_run(wired, actor, {"i": i}) for i in range(50)]
    ids = [r.id for r in runs]
    await wired.settle()
    first, first_sql = await wired.statements(wired.runs.get_many(actor, ids))
    assert first_sql == 1  # every run missed: one SELECT ... IN for all of them
    wired.redis.commands.clear()
    second, second_sql = await wired.statements(wired.runs.get_many(actor, ids))
    assert second_sql == 0
    assert wired.redis.commands == ["MGET"]
    assert second == first and [r.summary for r in second if r] == [{"i": i} for i in range(50)]


async def test_a_fresh_process_finds_what_another_one_cached(
    wired: Wired, redis: tuple[CountingRedis, str]
) -> None:
    """A second replica knows no id yet: it learns their projects from Redis (two MGETs, no SQL)."""
    actor = await actor_of(wired, "alpha")
    ids = [(await finished_run(wired, actor)).id for _ in range(3)]
    await wired.settle()
    await wired.runs.get_many(actor, ids)
    replica = wire(wired.database, *redis)
    replica.redis.commands.clear()
    found, sql = await replica.statements(replica.runs.get_many(actor, ids))
    assert sql == 0 and {r.id for r in found if r} == set(ids)
    assert replica.redis.commands == ["MGET", "MGET"]


# --- never stale --------------------------------------------------------------------------------------


async def test_refreshed_builtins_are_never_read_stale(wired: Wired) -> None:
    actor = await actor_of(wired, "alpha")
    builtin = await wired.workflows.get_by_name(actor, "digits-mlp")
    for _ in range(2):  # the second read of each is served from the cache
        await wired.workflows.get(actor, builtin.id)
        await wired.workflows.get_by_name(actor, "digits-mlp")
    assert wired.stats["hits"]["workflow"] >= 1 and wired.stats["hits"]["workflow-name"] >= 1
    changed = [
        replace(s, defaults={**(s.defaults or {}), "epochs": 7}) if s.name == "digits-mlp" else s
        for s in builtin_specs()
    ]
    await wired.workflows.install_builtins(changed)
    for _ in range(2):  # right after the write (tombstones), then once the cache is filled again
        assert (await wired.workflows.get(actor, builtin.id)).defaults["epochs"] == 7
        assert (await wired.workflows.get_by_name(actor, "digits-mlp")).defaults["epochs"] == 7
        assert (await wired.workflows.get_many(actor, [builtin.id]))[0].defaults["epochs"] == 7  # type: ignore[union-attr]
        await wired.settle()
    _, sql = await wired.statements(wired.workflows.get(actor, builtin.id))
    assert sql == 0  # cached again, with the new defaults (read just above)


async def test_a_running_run_is_never_served_from_the_cache(wired: Wired) -> None:
    actor = await actor_of(wired, "alpha")
    workflow = await wired.workflows.get_by_name(actor, "digits-mlp")
    run = await wired.runs.start_run(actor, workflow.id)
    await wired.execution.claim(run.id, 1, "executor-1")
    await wired.execution.mark_running(run.id, 1, "cpu")
    await wired.settle()
    hits = wired.stats["hits"].get("run", 0)
    for _ in range(3):
        read, sql = await wired.statements(wired.runs.get_run(actor, run.id))
        assert read.status is RunStatus.RUNNING and sql == 1
    assert wired.stats["hits"].get("run", 0) == hits
    assert await wired.redis.get(wired.uow.cache.key("run", run.project_id, run.id)) is None


async def test_a_live_run_read_again_costs_no_redis_round_trip(wired: Wired) -> None:
    """A status poll of a live run (each supervisor's, every second) would only ever miss: after one read
    shows the run live, it goes to the database alone, until a read finds it finished (then cached)."""
    actor = await actor_of(wired, "alpha")
    workflow = await wired.workflows.get_by_name(actor, "digits-mlp")
    run = await wired.runs.start_run(actor, workflow.id)
    await wired.execution.claim(run.id, 1, "executor-1")
    await wired.execution.mark_running(run.id, 1, "cpu")
    await wired.settle()
    await wired.runs.get_run(actor, run.id)
    wired.redis.commands.clear()
    for _ in range(3):
        read, sql = await wired.statements(wired.runs.get_run(actor, run.id))
        assert read.status is RunStatus.RUNNING and sql == 1
    assert wired.redis.commands == []
    await wired.execution.finish(run.id, 1, Outcome(RunStatus.SUCCEEDED, summary={"acc": 0.9}))
    await wired.settle()
    assert (await wired.runs.get_run(actor, run.id)).status is RunStatus.SUCCEEDED  # read, then cached
    hits = wired.stats["hits"].get("run", 0)
    read, sql = await wired.statements(wired.runs.get_run(actor, run.id))
    assert read.status is RunStatus.SUCCEEDED and sql == 0 and wired.stats["hits"]["run"] == hits + 1


async def test_a_run_finishing_is_read_at_once_with_its_summary(wired: Wired) -> None:
    actor = await actor_of(wired, "alpha")
    workflow = await wired.workflows.get_by_name(actor, "digits-mlp")
    run = await wired.runs.start_run(actor, workflow.id)
    await wired.execution.claim(run.id, 1, "executor-1")
    await wired.execution.mark_running(run.id, 1, "cpu")
    await wired.settle()
    assert (await wired.runs.get_run(actor, run.id)).summary is None
    await wired.execution.finish(run.id, 1, Outcome(RunStatus.SUCCEEDED, summary={"acc": 0.97}))
    for _ in range(3):  # the first read after the finish, then filled, then a hit
        read = await wired.runs.get_run(actor, run.id)
        assert (read.status, read.summary) == (RunStatus.SUCCEEDED, {"acc": 0.97})
        await wired.settle()
    _, sql = await wired.statements(wired.runs.get_run(actor, run.id))
    assert sql == 0


async def test_an_executor_writing_its_live_run_leaves_no_tombstones(wired: Wired) -> None:
    """A live run is never cached, so claiming, starting and finishing it invalidate nothing (each
    invalidation is two Redis round trips on the executor's path); the finished run is read at once."""
    actor = await actor_of(wired, "alpha")
    workflow = await wired.workflows.get_by_name(actor, "digits-mlp")
    run = await wired.runs.start_run(actor, workflow.id)
    await wired.settle()
    key = wired.uow.cache.key("run", run.project_id, run.id)
    assert await wired.execution.claim(run.id, 1, "executor-1") is not None
    await wired.execution.mark_running(run.id, 1, "cpu")
    assert await wired.redis.get(key) is None
    await wired.execution.finish(run.id, 1, Outcome(RunStatus.SUCCEEDED, summary={"acc": 0.9}))
    assert await wired.redis.get(key) is None
    read = await wired.runs.get_run(actor, run.id)  # no settling: nothing stands in the way of the fill
    assert (read.status, read.summary) == (RunStatus.SUCCEEDED, {"acc": 0.9})
    assert await wired.redis.get(key) not in (None, b"-")
    _, sql = await wired.statements(wired.runs.get_run(actor, run.id))
    assert sql == 0


async def test_writing_a_finished_run_still_invalidates_its_cached_value(wired: Wired) -> None:
    actor = await actor_of(wired, "alpha")
    run = await finished_run(wired, actor)
    await wired.settle()
    await wired.runs.get_run(actor, run.id)
    key = wired.uow.cache.key("run", run.project_id, run.id)
    assert await wired.redis.get(key) not in (None, b"-")
    await wired.runs.update_run(actor, run.id, name="renamed")
    assert await wired.redis.get(key) == b"-"
    assert (await wired.runs.get_run(actor, run.id)).name == "renamed"


async def test_logging_into_a_finished_cached_run_is_refused_and_changes_nothing(wired: Wired) -> None:
    actor = await actor_of(wired, "alpha")
    run = await finished_run(wired, actor)
    await wired.settle()
    await wired.runs.get_run(actor, run.id)
    cached, sql = await wired.statements(wired.runs.get_run(actor, run.id))
    assert sql == 0 and cached.metric_keys == []
    point = MetricPoint("late/loss", 1, 0.5, run.created_at)
    with pytest.raises(Conflict):  # a finished run takes no more metrics (late ingested ones: next test)
        await wired.metrics.log_metrics(actor, run.id, [point])
    assert (await wired.runs.get_run(actor, run.id)).metric_keys == []
    assert (await wired.runs.get_many(actor, [run.id]))[0].metric_keys == []  # type: ignore[union-attr]


async def test_metric_keys_stored_by_the_ingester_after_a_run_finished_are_read_at_once(wired: Wired) -> None:
    actor = await actor_of(wired, "alpha")
    run = await finished_run(wired, actor)
    await wired.settle()
    await wired.runs.get_many(actor, [run.id])
    assert (await wired.statements(wired.runs.get_many(actor, [run.id])))[1] == 0  # cached
    late = MetricBatch.of_points(run.id, 7, (MetricPoint("val/acc", 3, 0.8, run.created_at),))
    assert await wired.metrics.ingest([late]) == set()
    assert (await wired.runs.get_run(actor, run.id)).metric_keys == ["val/acc"]
    assert await wired.metrics.finished([run.id]) == {run.id}


async def test_a_write_is_read_back_inside_its_own_unit_of_work(wired: Wired) -> None:
    actor = await actor_of(wired, "alpha")
    run = await finished_run(wired, actor)
    await wired.settle()
    await wired.runs.get_run(actor, run.id)  # cached
    async with wired.uow() as uow:
        mine = await uow.runs.get(run.id, for_update=True)
        assert mine is not None
        mine.error = "rewritten"
        await uow.runs.update(mine)
        assert (await uow.runs.get(run.id)).error == "rewritten"  # type: ignore[union-attr]
        # Leaving without commit rolls back: the cache never saw the uncommitted row.
    assert (await wired.runs.get_run(actor, run.id)).error is None


# --- tenants ------------------------------------------------------------------------------------------


async def test_a_cached_run_of_one_project_is_not_returned_to_another(wired: Wired) -> None:
    alpha, beta = await actor_of(wired, "alpha"), await actor_of(wired, "beta")
    run = await finished_run(wired, alpha)
    await wired.settle()
    await wired.runs.get_run(alpha, run.id)
    assert (await wired.runs.get_run(alpha, run.id)).id == run.id  # served from the cache
    hits = wired.stats["hits"]["run"]
    assert await wired.runs.get_many(beta, [run.id]) == [None]
    with pytest.raises(NotFound):
        await wired.runs.get_run(beta, run.id)
    assert wired.stats["hits"]["run"] > hits  # beta's reads did hit the cache, and still saw nothing
    assert await wired.redis.exists(wired.uow.cache.key("run", alpha.project_ids[0], run.id))


# --- production wiring and /metrics -------------------------------------------------------------------

PAGE = """query($n: Int!) { runs(first: $n) { edges { node { id status summary
  workflow { name } project { name } latestMetrics { key value } } } } }"""
LOG = "mutation($run: ID!, $points: [MetricInput!]!) { logMetrics(runId: $run, points: $points) }"


@pytest.fixture
async def production(redis: tuple[CountingRedis, str]) -> AsyncIterator[Services]:
    _, prefix = redis
    async with fresh_postgres_url() as url:
        settings = Settings(database_url=url, redis_url=REDIS_URL, redis_prefix=prefix, executors=0)
        services = await bootstrap(settings, migrate=True)
        try:
            yield services
        finally:
            await services.aclose()


def metric_value(text: str, name: str, kind: str) -> float:
    prefix = f'{name}{{kind="{kind}"}} '
    lines = [line for line in text.splitlines() if line.startswith(prefix)]
    return float(lines[0].removeprefix(prefix)) if lines else 0.0


async def test_a_page_of_runs_costs_the_same_sql_whatever_its_size_in_production(
    production: Services, redis: tuple[CountingRedis, str]
) -> None:
    assert production.cache is not None, "bootstrap wires the cache when PTW_REDIS_URL is set"
    key = await issue_key(production, "alpha")
    actor = Actor(key_id=key.key_id, roles={key.project_id: Role.ADMIN})
    workflow = await production.workflows.get_by_name(actor, "digits-mlp")
    # Points stored at once through the production unit of work (not through the Redis metric log).
    stored = MetricService(production.workflows.uow, production.bus)
    for i in range(50):
        run = await production.runs.start_run(actor, workflow.id, params={"seed": i})
        await production.execution.claim(run.id, 1, "executor-1")
        await production.execution.finish(run.id, 1, Outcome(RunStatus.SUCCEEDED, summary={"i": i}))
        points = [MetricPoint(k, s, s * 0.1, run.created_at) for k in ("loss", "acc") for s in range(2)]
        await stored.record(run.id, series_of_points(points))
    app = create_app(production)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ptw.test") as http:
        gql = GraphQL(http, key.secret)

        async def statements(n: int) -> int:
            before = production.database.statements
            data = await gql.data(PAGE, {"n": n})
            assert len(data["runs"]["edges"]) == n
            assert all(len(e["node"]["latestMetrics"]) == 2 for e in data["runs"]["edges"])
            assert all(e["node"]["workflow"]["name"] == "digits-mlp" for e in data["runs"]["edges"])
            return production.database.statements - before

        await gql.data(PAGE, {"n": 50})  # authenticates once (last_used_at) and fills the cache
        await asyncio.sleep(1.2)  # the tombstones of the runs' writes (1 s by default) expire
        await gql.data(PAGE, {"n": 50})
        ten, fifty = await statements(10), await statements(50)
        print("statements for a page of runs, cache warm:", ten, fifty)
        assert ten == fifty <= 4, (ten, fifty)  # key + runs + latest metrics (+ memberships)

        async def cold(n: int) -> int:
            await drop_keys(redis[0], f"{redis[1]}:cache")
            return await statements(n)

        cold_ten, cold_fifty = await cold(10), await cold(50)
        print("statements for a page of runs, cache cold:", cold_ten, cold_fifty)
        assert cold_ten == cold_fifty == ten + 2  # + the workflows and the projects
        metrics = (await http.get("/metrics")).text
    # A page's DataLoaders ask once for its one workflow and once for the caller's projects.
    assert metric_value(metrics, "ptw_cache_hits_total", "workflow") >= 2
    assert metric_value(metrics, "ptw_cache_hits_total", "project") >= 2
    assert metric_value(metrics, "ptw_cache_misses_total", "workflow") >= 1


async def test_reads_go_to_the_database_while_redis_is_down(redis: tuple[CountingRedis, str]) -> None:
    _, prefix = redis
    async with fresh_postgres_url() as url:
        settings = Settings(database_url=url, redis_url=CLOSED_PORT_URL, redis_prefix=prefix, executors=0)
        services = await bootstrap(
            settings, migrate=True
        )  # installs the built-ins through the (failing) cache
        try:
            key = await issue_key(services, "alpha")
            app = create_app(services)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://ptw.test") as http:
                gql = GraphQL(http, key.secret)
                query = '{ workflow(name: "digits-mlp") { name entrypoint } }'
                for _ in range(3):
                    assert (await gql.data(query))["workflow"]["name"] == "digits-mlp"
                metrics = (await http.get("/metrics")).text
        finally:
            await services.aclose()
    errors = sum(metric_value(metrics, "ptw_cache_errors_total", k) for k in ("workflow-name", "invalidate"))
    assert errors >= 1, metrics
    assert metric_value(metrics, "ptw_cache_hits_total", "workflow-name") == 0
