"""Projects, API keys and authentication."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from ptw.domain import keys
from ptw.domain.clock import new_id, utcnow
from ptw.domain.errors import BadInput, Conflict, Forbidden, NotFound, Unauthenticated
from ptw.domain.events import KeyRevoked, key_topic
from ptw.domain.ports import EventBus, UnitOfWork, UnitOfWorkFactory
from ptw.domain.quotas import ProjectQuota
from ptw.domain.tenancy import Actor, ApiKey, Membership, Project, Role

LAST_USED_RESOLUTION = timedelta(minutes=1)
_PROJECT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}$")


@dataclass(frozen=True)
class IssuedKey:
    """A key just created: the only time its secret is known."""

    key: ApiKey
    secret: str
    project: Project
    role: Role


@dataclass
class AccessService:
    """``bus`` set: a revocation is published (``KeyRevoked``), so every replica ends the key's open
    WebSocket connections at once. HTTP needs no such signal: every request is authenticated afresh."""

    uow: UnitOfWorkFactory
    bus: EventBus | None = None

    async def authenticate(self, secret: str | None) -> Actor:
        if not secret:
            raise Unauthenticated("an API key is required: send 'Authorization: Bearer <key>'")
        prefix = keys.prefix_of(secret)
        async with self.uow() as uow:
            found = await uow.api_keys.get_for_auth(prefix) if prefix else None
            if found is None:
                # The same answer as a wrong secret; ``unknown`` (never shown) lets the API remember it.
                raise Unauthenticated("invalid or revoked API key", unknown=prefix)
            if found[0].revoked or not keys.matches(secret, found[0].secret_hash):
                raise Unauthenticated("invalid or revoked API key")
            key, memberships = found
            now = utcnow()
            # Written at most once a minute: a write per request would cost every read a round trip.
            if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
                key.last_used_at = now
                await uow.api_keys.update(key)
                await uow.commit()
        return Actor(key_id=key.id, roles={m.project_id: m.role for m in memberships}, name=key.name)

    async def set_quota(
        self,
        project_name: str,
        *,
        max_queued_runs: int | None,
        max_optimizations: int | None,
        max_running_runs: int | None = None,
    ) -> ProjectQuota:
        """The operator's (``ptw projects quota``, with the database's credentials, no API key): a
        project's own limits, None for the deployment's default. Tenants' admins cannot raise their own."""
        for limit in (max_queued_runs, max_optimizations, max_running_runs):
            if limit is not None and limit < 0:
                raise BadInput("a quota is 0 or more")
        async with self.uow() as uow:
            project = await uow.projects.get_by_name(project_name)
            if project is None:
                raise NotFound.of("Project", project_name)
            quota = ProjectQuota(project.id, max_queued_runs, max_optimizations, max_running_runs)
            await uow.projects.set_quota(quota)
            await uow.commit()
        return quota

    async def projects_of(self, actor: Actor) -> list[tuple[Project, Role]]:
        async with self.uow() as uow:
            projects = await uow.projects.get_many(actor.project_ids)
        return [(p, actor.roles[p.id]) for p in sorted(projects, key=lambda p: p.name)]

    async def get_project(self, actor: Actor, project_id: str) -> Project:
        actor.require(project_id, Role.VIEWER)
        async with self.uow() as uow:
            project = await uow.projects.get(project_id)
        if project is None:
            raise NotFound.of("Project", project_id)
        return project

    async def create_project(self, actor: Actor, name: str) -> Project:
        """Any admin may create a project; its key becomes admin of the new one."""
        if Role.ADMIN not in actor.roles.values():
            raise Forbidden("creating a project needs an admin key")
        async with self.uow() as uow:
            project = await self._new_project(uow, name)
            await uow.api_keys.add_membership(Membership(actor.key_id, project.id, Role.ADMIN))
            await uow.commit()
        return project

    async def create_api_key(
        self, actor: Actor, project_id: str, role: Role, name: str | None = None
    ) -> IssuedKey:
        actor.require(project_id, Role.ADMIN)
        async with self.uow() as uow:
            project = await uow.projects.get(project_id)
            if project is None:
                raise NotFound.of("Project", project_id)
            issued = await self._issue(uow, project, role, name)
            await uow.commit()
        return issued

    async def get_api_key(self, actor: Actor, key_id: str) -> ApiKey:
        """A key is visible to itself and to the admins of one of its projects; to anyone else it does
        not exist (a viewer of the project cannot even tell that other keys are there)."""
        async with self.uow() as uow:
            key = await uow.api_keys.get(key_id)
            memberships = await uow.api_keys.memberships(key_id) if key else []
        if key is None or not (key.id == actor.key_id or _administered(actor, memberships)):
            raise NotFound.of("ApiKey", key_id)
        return key

    async def keys_of(self, actor: Actor, project_id: str) -> list[tuple[ApiKey, Role]]:
        """The project's keys and their roles, for its admins (secrets are never stored to be shown)."""
        actor.require(project_id, Role.ADMIN, "Project", project_id)
        async with self.uow() as uow:
            return await uow.api_keys.in_project(project_id)

    async def revoke_api_key(self, actor: Actor, key_id: str) -> ApiKey:
        """An admin of every project the key belongs to may revoke it (a key may revoke itself)."""
        async with self.uow() as uow:
            key = await uow.api_keys.get(key_id)
            memberships = await uow.api_keys.memberships(key_id) if key else []
            visible = [m for m in memberships if actor.can_see(m.project_id)]
            if key is None or (key.id != actor.key_id and not visible):
                raise NotFound.of("ApiKey", key_id)
            if key.id != actor.key_id:
                for m in memberships:
                    actor.require(m.project_id, Role.ADMIN, "ApiKey", key_id)
            if not key.revoked:
                key.revoked_at = utcnow()
                await uow.api_keys.update(key)
            await uow.commit()
        if self.bus is not None:
            # Published even when it was revoked already: a replica that missed the first event
            # (pub/sub is at most once) gets another chance; ending a connection twice is harmless.
            await self.bus.publish([key_topic(key.id)], KeyRevoked(key.id))
        return key

    async def still_allowed(self, actor: Actor, secret: str | None) -> bool:
        """Whether a long-lived connection authenticated as ``actor`` may go on: its key still works and
        has kept every role it had (a role it gained does not matter; a lost one ends the connection)."""
        try:
            fresh = await self.authenticate(secret)
        except Unauthenticated:
            return False
        return fresh.key_id == actor.key_id and all(
            fresh.roles.get(project, 0) >= role for project, role in actor.roles.items()
        )

    async def bootstrap_key(self, project_name: str, role: Role, name: str | None = None) -> IssuedKey:
        """Operator path (CLI, first start): a key for the project, created if missing. No actor."""
        project_name = project_name.strip()
        async with self.uow() as uow:
            project = await uow.projects.get_by_name(project_name)
            if project is None:
                project = await self._new_project(uow, project_name)
            issued = await self._issue(uow, project, role, name)
            await uow.commit()
        return issued

    async def _new_project(self, uow: UnitOfWork, name: str) -> Project:
        name = name.strip()
        if not _PROJECT_NAME.match(name):
            raise BadInput("a project name is 1-100 letters, digits, spaces, '.', '_' or '-'", field="name")
        if await uow.projects.get_by_name(name) is not None:
            raise Conflict(f"a project named {name!r} already exists", field="name")
        project = Project(id=new_id(), name=name, created_at=utcnow())
        await uow.projects.add(project)
        return project

    async def _issue(self, uow: UnitOfWork, project: Project, role: Role, name: str | None) -> IssuedKey:
        prefix, secret, secret_hash = keys.new_secret()
        key = ApiKey(id=new_id(), prefix=prefix, secret_hash=secret_hash, name=name, created_at=utcnow())
        await uow.api_keys.add(key)
        await uow.api_keys.add_membership(Membership(key.id, project.id, role))
        return IssuedKey(key=key, secret=secret, project=project, role=role)


def _administered(actor: Actor, memberships: list[Membership]) -> bool:
    return any(actor.roles.get(m.project_id) == Role.ADMIN for m in memberships)
