"""A small GraphQL client for the CLI: queries over HTTP, subscriptions over graphql-transport-ws."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import websockets


class GraphQLError(Exception):
    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors
        first = errors[0] if errors else {}
        self.code = (first.get("extensions") or {}).get("code")
        super().__init__("; ".join(e.get("message", "?") for e in errors))


class GraphQLClient:
    """Talks to one server with one API key. Hand-written because the protocol surface we need is two
    message shapes; a general client library (gql) would add a heavy dependency for the CLI alone."""

    def __init__(self, url: str, key: str | None, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        if not self.url.endswith("/graphql"):
            self.url += "/graphql"
        self.key = key
        self.timeout = timeout

    @property
    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"} if self.key else {}

    async def execute(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=self.timeout) as http:
            response = await http.post(
                self.url, json={"query": query, "variables": variables or {}}, headers=self._headers
            )
        body = response.json()
        if body.get("errors"):
            raise GraphQLError(body["errors"])
        response.raise_for_status()
        data: dict[str, Any] = body["data"]
        return data

    async def subscribe(
        self, query: str, variables: dict[str, Any] | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        ws_url = "ws" + self.url.removeprefix("http")
        async with websockets.connect(ws_url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
            payload = {"authorization": f"Bearer {self.key}"} if self.key else {}
            await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
            ack = json.loads(await ws.recv())
            if ack.get("type") != "connection_ack":
                raise GraphQLError([{"message": f"subscription refused: {ack}"}])
            op = str(uuid.uuid4())
            subscribe = {"query": query, "variables": variables or {}}
            await ws.send(json.dumps({"id": op, "type": "subscribe", "payload": subscribe}))
            async for raw in ws:
                message = json.loads(raw)
                kind = message.get("type")
                if kind == "ping":
                    await ws.send(json.dumps({"type": "pong"}))
                elif kind == "next" and message.get("id") == op:
                    payload = message["payload"]
                    if payload.get("errors"):
                        raise GraphQLError(payload["errors"])
                    yield payload["data"]
                elif kind == "error":
                    raise GraphQLError(message.get("payload") or [{"message": "subscription error"}])
                elif kind == "complete":
                    return
