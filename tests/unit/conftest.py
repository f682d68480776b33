"""Unit tests: every SQLite database a test's MemoryWorld opened is closed and removed after it."""

from collections.abc import AsyncIterator

import pytest

from tests.fixtures.memory import OPEN_DATABASES


@pytest.fixture(autouse=True)
async def close_databases() -> AsyncIterator[None]:
    yield
    while OPEN_DATABASES:
        await OPEN_DATABASES.pop().close()
