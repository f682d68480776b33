"""``GET /artifacts/{id}``: an artifact's bytes, streamed to a caller whose ``Authorization: Bearer <key>``
may see its run (another project's artifact is 404 like a missing one), from whichever store the executors
use (a directory or a bucket; decrypted when checkpoints are sealed)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from starlette.concurrency import iterate_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ptw.api.ids import decode_id
from ptw.api.runs.artifacts import DOWNLOAD_PATH
from ptw.api.view import bearer_secret
from ptw.domain.errors import DomainError, NotFound
from ptw.domain.ports import ArtifactFiles

if TYPE_CHECKING:
    from ptw.infra.bootstrap import Services

CHUNK = 1 << 20
_STATUS = {"UNAUTHENTICATED": 401, "FORBIDDEN": 403, "NOT_FOUND": 404, "RATE_LIMITED": 429}


def artifact_routes(services: Services) -> list[Route]:
    async def download(request: Request) -> Response:
        try:
            actor = await services.access.authenticate(bearer_secret(request.headers.get("authorization")))
            ident = request.path_params["artifact_id"]
            artifact = await services.artifacts.get(actor, _artifact_id(ident))
        except DomainError as error:
            headers = {"WWW-Authenticate": "Bearer"} if error.code == "UNAUTHENTICATED" else None
            body = {"error": error.message, "code": error.code}
            return JSONResponse(body, _STATUS.get(error.code, 400), headers=headers)
        files = services.artifacts.files
        if files is None:
            return JSONResponse({"error": "no artifact store is configured", "code": "NOT_FOUND"}, 404)
        name = artifact.name or artifact.uri.rsplit("/", 1)[-1]
        headers = {"Content-Disposition": f'attachment; filename="{name}"'}
        return StreamingResponse(
            iterate_in_threadpool(_chunks(files, artifact.uri)),
            media_type="application/octet-stream",
            headers=headers,
        )

    return [Route(f"{DOWNLOAD_PATH}{{artifact_id}}", download, methods=["GET"])]


def _artifact_id(ident: str) -> str:
    try:
        return decode_id(ident, "Artifact")
    except DomainError:
        raise NotFound.of("Artifact", ident) from None


def _chunks(files: ArtifactFiles, uri: str) -> Iterator[bytes]:
    with files.open(uri) as stream:
        while chunk := stream.read(CHUNK):
            yield chunk
