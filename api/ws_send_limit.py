"""Ends a WebSocket connection whose client stops reading, so what the server holds for it stays bounded.

uvicorn stops taking frames once a connection's write buffer passes its high-water mark (64 KiB), so a
client that never reads leaves each send of ours waiting, and everything produced for it meanwhile waits
in memory behind that send. A send that waits longer than ``seconds`` ends the connection: the app's
``receive`` answers a disconnect (strawberry then ends every operation of the connection, cancelling the
waiting sends), and the close frame, 1008 'client is not reading', is sent if the buffer ever takes it.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

NOT_READING = 1008
REASON = "client is not reading"
_closing: set[asyncio.Task[None]] = set()  # referenced until done, as asyncio asks


class WebSocketSendLimit:
    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app, self.seconds = app, seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        stuck = asyncio.Event()

        async def limited_send(message: Message) -> None:
            if stuck.is_set():
                await _never()  # the connection is ending: this operation is about to be cancelled
            try:
                async with asyncio.timeout(self.seconds):
                    await send(message)
            except TimeoutError:
                stuck.set()
                closing = asyncio.get_running_loop().create_task(_close(send, self.seconds))
                _closing.add(closing)
                closing.add_done_callback(_closing.discard)
                await _never()

        async def watched_receive() -> Message:
            if stuck.is_set():
                return {"type": "websocket.disconnect", "code": NOT_READING}
            received = asyncio.ensure_future(receive())
            ended = asyncio.ensure_future(stuck.wait())
            await asyncio.wait({received, ended}, return_when=asyncio.FIRST_COMPLETED)
            ended.cancel()
            if received.done():
                return received.result()
            received.cancel()
            return {"type": "websocket.disconnect", "code": NOT_READING}

        await self.app(scope, watched_receive, limited_send)


async def _never() -> Any:
    await asyncio.get_running_loop().create_future()


async def _close(send: Send, seconds: float) -> None:
    with contextlib.suppress(Exception):
        async with asyncio.timeout(seconds):
            await send({"type": "websocket.close", "code": NOT_READING, "reason": REASON})
