"""Artifacts of runs in the schema: ``Run.artifacts`` (with each one's download URL) and ``deleteRun``."""

from __future__ import annotations

from datetime import datetime

import strawberry
from starlette.requests import Request

from ptw.api.context import Info
from ptw.api.ids import encode_id
from ptw.api.node import Node
from ptw.api.run_ids import run_id_of
from ptw.domain import runs

DOWNLOAD_PATH = "/artifacts/"


@strawberry.type(description="A checkpoint or a file a run saved (ctx.save_artifact), downloadable.")
class Artifact(Node):
    name: str
    kind: str = strawberry.field(description="checkpoint or file")
    attempt: int
    step: int | None
    size_bytes: int
    created_at: datetime
    download_url: str = strawberry.field(
        description="GET it with the same Authorization: Bearer header as the API."
    )

    @classmethod
    def from_domain(cls, artifact: runs.Checkpoint, base_url: str) -> Artifact:
        ident = encode_id("Artifact", artifact.id)
        return cls(
            id=strawberry.ID(ident),
            name=artifact.name or artifact.uri.rstrip("/").rsplit("/", 1)[-1],
            kind=artifact.kind,
            attempt=artifact.attempt,
            step=artifact.step,
            size_bytes=artifact.size_bytes,
            created_at=artifact.created_at,
            download_url=f"{base_url.rstrip('/')}{DOWNLOAD_PATH}{ident}",
        )


def base_url(info: Info) -> str:
    request = info.context.request
    return str(request.base_url) if isinstance(request, Request) else ""


async def run_artifacts(info: Info, run_id: str) -> list[Artifact]:
    found = await info.context.services.artifacts.of_run(info.context.actor, run_id)
    return [Artifact.from_domain(a, base_url(info)) for a in found]


@strawberry.type
class ArtifactMutations:
    @strawberry.mutation(
        description="Delete a run that ended, with its metrics, output, attempts, artifacts and their files; "
        "answers its id. A run still going is CONFLICT."
    )
    async def delete_run(self, info: Info, id: strawberry.ID) -> strawberry.ID:
        run = await info.context.services.artifacts.delete_run(info.context.actor, await run_id_of(info, id))
        return strawberry.ID(encode_id("Run", run.id))
