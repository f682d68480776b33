"""Routes of the web UI: the dashboard page at ``/`` and its static files under ``/ui/``.

Everything the browser loads (our modules, uPlot, graphql-ws, GraphiQL, React) lies in ``static/`` inside the
installed package, so the UI works with no CDN and no Node where the server runs.
"""

from __future__ import annotations

from importlib.resources import files

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

STATIC = files("ptw.api.ui") / "static"
STATIC_PREFIX = "/ui"
# Only this server may be reached: a page that tried a CDN would fail loudly instead of leaking.
DASHBOARD_POLICY = (
    "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def page(name: str) -> str:
    return (STATIC / name).read_text(encoding="utf-8")


async def dashboard(_: Request) -> Response:
    return HTMLResponse(
        page("index.html"),
        headers={"Content-Security-Policy": DASHBOARD_POLICY, "Cache-Control": "no-cache"},
    )


def ui_routes() -> list[BaseRoute]:
    """``/`` and ``/ui/...``; add them to the app's routes."""
    return [
        Route("/", dashboard, methods=["GET"]),
        Mount(STATIC_PREFIX, app=StaticFiles(packages=[("ptw.api.ui", "static")]), name="ui"),
    ]
