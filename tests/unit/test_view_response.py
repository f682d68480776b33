"""HTTP answers of the GraphQL endpoint: orjson's bytes, a large one sent in slices with its length."""

from __future__ import annotations

import json
from typing import Any

import httpx
import numpy as np
from starlette.responses import Response, StreamingResponse

from ptw.api import view


def _sub_response(status: int | None = None, **headers: str) -> Response:
    """What strawberry's view hands create_response: no status of its own, no content-length."""
    sub = Response(headers=headers)
    sub.status_code = status  # type: ignore[assignment]
    del sub.headers["content-length"]
    return sub


async def _served(response: Response) -> httpx.Response:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await response(scope, receive, send)

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        return await http.get("/")


async def test_a_large_answer_is_sent_in_slices_whole_and_with_its_length() -> None:
    values = np.arange(300_000, dtype=np.float64) / 7  # ~6 MB of JSON, written by orjson from the array
    data = {"data": {"run": {"metrics": {"columns": {"loss": {"values": values}}}}}}
    sub = _sub_response(**{"x-ptw": "kept"})
    response = view.GraphQLEndpoint.create_response(None, data, sub)  # type: ignore[arg-type]
    assert isinstance(response, StreamingResponse)
    answer = await _served(response)
    assert int(answer.headers["content-length"]) == len(answer.content) > 4 * view.BODY_SLICE
    assert answer.headers["x-ptw"] == "kept" and answer.headers["content-type"] == "application/json"
    got = json.loads(answer.content)["data"]["run"]["metrics"]["columns"]["loss"]["values"]
    assert got == values.tolist()


async def test_a_small_answer_is_one_body_with_the_sub_responses_status() -> None:
    sub = _sub_response(207)
    response = view.GraphQLEndpoint.create_response(None, {"data": {"x": 2**70}}, sub)  # type: ignore[arg-type]
    assert not isinstance(response, StreamingResponse)
    answer = await _served(response)
    assert answer.status_code == 207 and json.loads(answer.content) == {"data": {"x": 2**70}}
