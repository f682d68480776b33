"""API keys and their memberships in projects."""

from __future__ import annotations

from sqlalchemy import select, update

from ptw.domain.tenancy import ApiKey, Membership, Role
from ptw.infra.db.mapping import EntityMapping
from ptw.infra.db.models import ApiKeyRow, Base, MembershipRow
from ptw.infra.db.repositories.base import SqlRepository

api_keys = Base.metadata.tables[ApiKeyRow.__tablename__]
memberships = Base.metadata.tables[MembershipRow.__tablename__]


mapping = EntityMapping(ApiKey, api_keys)


class SqlApiKeyRepository(SqlRepository):
    async def add(self, key: ApiKey) -> None:
        await self.insert(api_keys, mapping.values(key), f"API key with prefix {key.prefix}")

    async def get(self, key_id: str) -> ApiKey | None:
        row = (await self.session.execute(select(api_keys).where(api_keys.c.id == key_id))).first()
        return mapping.entity_of(row) if row else None

    async def get_for_auth(self, prefix: str) -> tuple[ApiKey, list[Membership]] | None:
        stmt = (
            select(api_keys, memberships.c.project_id, memberships.c.role)
            .outerjoin(memberships, memberships.c.key_id == api_keys.c.id)
            .where(api_keys.c.prefix == prefix)
            .order_by(memberships.c.project_id)
        )
        rows = (await self.session.execute(stmt)).all()
        if not rows:
            return None
        key = mapping.entity_of(rows[0])
        granted = [Membership(key.id, r.project_id, Role[r.role]) for r in rows if r.project_id is not None]
        return key, granted

    async def update(self, key: ApiKey) -> None:
        values = mapping.values(key)
        del values["id"]
        await self.session.execute(update(api_keys).where(api_keys.c.id == key.id).values(values))

    async def add_membership(self, membership: Membership) -> None:
        """Grant a role in a project; granting again replaces the role."""
        stmt = self.upsert(memberships).values(
            key_id=membership.key_id, project_id=membership.project_id, role=membership.role.name
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[memberships.c.key_id, memberships.c.project_id], set_={"role": stmt.excluded.role}
        )
        await self.session.execute(stmt)

    async def in_project(self, project_id: str) -> list[tuple[ApiKey, Role]]:
        stmt = (
            select(api_keys, memberships.c.role)
            .join(memberships, memberships.c.key_id == api_keys.c.id)
            .where(memberships.c.project_id == project_id)
            .order_by(api_keys.c.created_at, api_keys.c.id)
        )
        return [(mapping.entity_of(r), Role[r.role]) for r in (await self.session.execute(stmt)).all()]

    async def memberships(self, key_id: str) -> list[Membership]:
        stmt = select(memberships).where(memberships.c.key_id == key_id).order_by(memberships.c.project_id)
        return [
            Membership(key_id=r.key_id, project_id=r.project_id, role=Role[r.role])
            for r in (await self.session.execute(stmt)).all()
        ]
