"""The tracking client's calls to the server: GraphQL mutations and the bulk metric endpoint, over one
keep-alive HTTP connection. Failures are sorted into the server being away (try again later) and the
server refusing (do not)."""

from __future__ import annotations

from typing import Any

import httpx

from ptw.tracking import wire
from ptw.tracking.connection import Connection


class Unreachable(Exception):
    """No answer, or one that says to come back (5xx, 429): the call may be made again."""


class Refused(Exception):
    """The server answered no (bad input, a key without rights, a run that ended): never retried."""

    def __init__(self, message: str, code: str | None) -> None:
        super().__init__(message)
        self.code = code


START = """mutation($input: StartExternalRunInput!) {
  startExternalRun(input: $input) { id shortId name status } }"""
BEAT = "mutation($id: ID!, $summary: JSON) { heartbeatRun(id: $id, summary: $summary) { status error } }"
FINISH = """mutation($id: ID!, $input: FinishRunInput!) { finishRun(id: $id, input: $input) { status } }"""
PROJECTS = "{ viewer { projects { id name } } }"


class Server:
    def __init__(self, connection: Connection, timeout: float = 10.0) -> None:
        self.connection = connection
        self._http = httpx.Client(
            base_url=connection.url,
            headers={"Authorization": f"Bearer {connection.key}"},
            timeout=timeout,
        )

    def close(self) -> None:
        self._http.close()

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self._post("/graphql", json={"query": query, "variables": variables or {}})
        try:
            body = response.json()
        except ValueError:
            raise Unreachable(f"the server answered {response.status_code} without JSON") from None
        errors = body.get("errors") if isinstance(body, dict) else None
        if errors:
            code = (errors[0].get("extensions") or {}).get("code")
            if code in ("RATE_LIMITED", "INTERNAL_SERVER_ERROR"):
                raise Unreachable(errors[0].get("message", code))
            raise Refused("; ".join(e.get("message", "?") for e in errors), code)
        if response.status_code >= 400:
            raise Unreachable(f"the server answered {response.status_code}")
        data: dict[str, Any] = body["data"]
        return data

    def send_metrics(self, run_id: str, body: bytes) -> None:
        response = self._post(
            f"/api/runs/{run_id}/metrics", content=body, headers={"Content-Type": wire.CONTENT_TYPE}
        )
        if response.status_code == 200:
            return
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        message = answer.get("error") or f"the server answered {response.status_code}"
        if response.status_code in (429,) or response.status_code >= 500:
            raise Unreachable(message)
        raise Refused(message, answer.get("code"))

    def project_id(self, name: str) -> str:
        projects = self.graphql(PROJECTS)["viewer"]["projects"]
        for project in projects:
            if project["name"] == name:
                return str(project["id"])
        known = ", ".join(sorted(p["name"] for p in projects)) or "none"
        raise Refused(f"this API key has no project named {name!r} (it has: {known})", "NOT_FOUND")

    def _post(self, path: str, **options: Any) -> httpx.Response:
        try:
            response = self._http.post(path, **options)
        except httpx.HTTPError as error:
            raise Unreachable(f"{self.connection.url} does not answer ({type(error).__name__})") from None
        if response.status_code == 413:
            raise Refused("the request is too large for the server", "BAD_USER_INPUT")
        return response
