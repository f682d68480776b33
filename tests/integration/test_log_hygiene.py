"""No tenant data in the server log: a failed statement on the real databases is logged with its
statement and never its bound values or the driver's message quoting them, through the API's error log
and through the filter on the server's log handlers."""

from __future__ import annotations

import io
import logging

import pytest
from graphql import GraphQLError
from sqlalchemy import insert
from sqlalchemy.exc import DBAPIError

from ptw.api.errors import RedactDatabaseErrors, log_unexpected
from ptw.domain.clock import utcnow
from ptw.infra.db.database import Database
from ptw.infra.db.models import ProjectRow

SECRET = "tenant-secret-name-7f3a"


async def failed_statement(database: Database) -> DBAPIError:
    """A unique violation on the projects' name: PostgreSQL's message quotes the value (DETAIL)."""
    row = {"name": SECRET, "created_at": utcnow()}
    async with database.sessions() as session:
        await session.execute(insert(ProjectRow).values(id="p-1", **row))
        with pytest.raises(DBAPIError) as caught:
            await session.execute(insert(ProjectRow).values(id="p-2", **row))
    return caught.value


async def test_a_failed_statement_is_logged_without_its_values(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    error = await failed_statement(database)
    assert "parameters hidden" in str(error)  # hide_parameters: the engine never renders the values

    with caplog.at_level(logging.ERROR, logger="ptw.api"):
        log_unexpected([GraphQLError("boom", original_error=error)])
    assert caplog.records and "INSERT INTO projects" in caplog.text
    assert SECRET not in caplog.text

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactDatabaseErrors())
    logger = logging.getLogger("ptw.test.hygiene")
    logger.addHandler(handler)
    try:
        try:
            raise RuntimeError("while storing a batch") from error
        except RuntimeError:
            logger.exception("ingest failed")
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert "ingest failed" in text and "INSERT INTO projects" in text and "sqlstate" in text
    assert SECRET not in text
