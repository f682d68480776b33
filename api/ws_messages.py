"""WebSocket messages checked for shape before strawberry's protocol handlers read them: a frame that is
JSON but not a message (``[1, 2]``, a ``subscribe`` whose ``payload`` is null) closes the connection with
the protocol's 4400 'invalid message', where strawberry would index into it and crash the connection's task
with a traceback in the log."""

from __future__ import annotations

from typing import Any

from starlette.websockets import WebSocketDisconnect
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler

from ptw.api.shared_events import CURRENT_OPERATION, encoded_next

INVALID = 4400
# The messages that carry an operation (graphql-transport-ws: subscribe; legacy graphql-ws: start).
_OPERATIONS = {"subscribe", "start"}
_WITH_ID = {"subscribe", "complete", "start", "stop"}


def message_problem(message: object) -> str | None:
    """Why ``message`` cannot be a protocol message; None when its shape is right."""
    if not isinstance(message, dict):
        return "a message must be a JSON object"
    kind = message.get("type")
    if not isinstance(kind, str):
        return "a message must have a string 'type'"
    if kind in _WITH_ID and not isinstance(message.get("id"), str):
        return f"a '{kind}' message must have a string 'id'"
    payload = message.get("payload")
    if kind == "connection_init" and payload is not None and not isinstance(payload, dict):
        return "the connection_init payload must be an object"
    if kind in _OPERATIONS:
        if not isinstance(payload, dict):
            return f"a '{kind}' message must have an object 'payload'"
        if not isinstance(payload.get("query"), str):
            return "the payload must have a string 'query'"
        for name, kinds in (("variables", dict), ("operationName", str), ("extensions", dict)):
            if payload.get(name) is not None and not isinstance(payload[name], kinds):
                return f"the payload's '{name}' has the wrong type"
    return None


class TransportWsHandler(BaseGraphQLTransportWSHandler[Any, None]):
    async def handle_message(self, message: Any) -> None:
        problem = message_problem(message)
        if problem is not None:
            await self.handle_invalid_message(problem)
            return
        await super().handle_message(message)

    async def run_operation(self, operation: Operation[Any, None]) -> None:
        # The operation's resolvers may send its shared events themselves (shared_events.DirectNext).
        CURRENT_OPERATION.set((self, operation))  # this task's own context: no reset needed
        await super().run_operation(operation)

    async def send_text(self, text: str) -> None:
        await self.websocket.ws.send_text(text)

    async def send_message(self, message: Any) -> None:
        # A shared event's ``next`` is encoded once for all its subscribers (api/shared_events.py).
        text = encoded_next(message["id"], message["payload"]) if message.get("type") == "next" else None
        if text is None:
            await super().send_message(message)
            return
        try:
            await self.send_text(text)
        except WebSocketDisconnect as exc:
            raise WebSocketDisconnected from exc


class LegacyWsHandler(BaseGraphQLWSHandler[Any, None]):
    async def handle_message(self, message: Any) -> None:
        problem = message_problem(message)
        if problem is not None:
            await self.websocket.close(code=INVALID, reason=problem)
            return
        await super().handle_message(message)
