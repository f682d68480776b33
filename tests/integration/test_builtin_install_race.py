"""Processes that start together (three workers, a rolling deploy) all install the built-in workflows on
one PostgreSQL; the losers of the insert race refresh them instead of failing their start-up."""

from __future__ import annotations

import asyncio

import pytest

from ptw.domain.services.workflows import WorkflowService
from ptw.infra.bootstrap import builtin_specs
from ptw.infra.params_validator import JsonSchemaValidator
from tests.fixtures.databases import fresh_postgres_url, migrated_database

pytestmark = pytest.mark.postgres


async def test_concurrent_installs_of_the_builtins_all_succeed_with_one_row_each() -> None:
    async with fresh_postgres_url() as url, migrated_database(url) as database:
        services = [WorkflowService(database.uow_factory(), JsonSchemaValidator()) for _ in range(4)]
        specs = builtin_specs()
        results = await asyncio.gather(*(s.install_builtins(specs) for s in services))
        assert all(len(installed) == len(specs) for installed in results)
        ids = {frozenset(w.id for w in installed) for installed in results}
        assert len(ids) == 1, "every process sees the same built-in rows"
        async with database.uow_factory()() as uow:
            for spec in specs:
                assert (await uow.workflows.get_by_name(spec.name, None)) is not None
