"""Reading one kind of object by id through the cache, and what a unit of work wrote (read past it)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from ptw.infra.cache.redis_cache import RedisCache


class _Identified(Protocol):
    @property
    def id(self) -> str: ...


T = TypeVar("T", bound=_Identified)


@dataclass
class Writes:
    """Keys of what one unit of work wrote: read from the database meanwhile, and (most) invalidated."""

    written: set[str] = field(default_factory=set)
    to_invalidate: set[str] = field(default_factory=set)

    def wrote(self, *keys: str, invalidate: bool = True) -> None:
        self.written.update(keys)
        if invalidate:
            self.to_invalidate.update(keys)


@dataclass
class Kind(Generic[T]):
    """How the objects of one kind are cached; ``cacheable`` says which of them may be."""

    name: str
    encode: Callable[[T], str]
    decode: Callable[[str], T]
    project_of: Callable[[T], str | None]
    cacheable: Callable[[T], bool] = lambda _: True


class ReadThrough(Generic[T]):
    """Lookups by id of one kind: cached values first (one MGET), then the database for the rest."""

    def __init__(self, kind: Kind[T], cache: RedisCache, writes: Writes) -> None:
        self.kind, self.cache, self.writes = kind, cache, writes

    def key(self, obj: T) -> str:
        return self.cache.key(self.kind.name, self.kind.project_of(obj), obj.id)

    async def many(self, ids: Sequence[str], load: Callable[[list[str]], Awaitable[list[T]]]) -> list[T]:
        wanted = list(dict.fromkeys(ids))
        clean = [
            i
            for i in wanted
            if self.cache.known_key(self.kind.name, i) not in self.writes.written
            and self.cache.worth_looking_up(self.kind.name, i)
        ]
        hits: dict[str, T] = {}
        for ident, text in (await self.cache.lookup(self.kind.name, clean)).items():
            if (obj := self._decoded(ident, text)) is not None:
                hits[ident] = obj
        missing = [i for i in wanted if i not in hits]
        loaded = await load(missing) if missing else []
        await self.fill(loaded)
        return [*hits.values(), *loaded]

    async def fill(self, objects: Sequence[T]) -> None:
        entries: dict[str, str] = {}
        locations: dict[str, str | None] = {}
        for obj in objects:
            self.cache.remember(self.kind.name, obj.id, self.kind.project_of(obj))
            self.cache.saw_uncacheable(self.kind.name, obj.id, not self.kind.cacheable(obj))
            key = self.key(obj)
            if self.kind.cacheable(obj) and key not in self.writes.written:
                entries[key] = self.kind.encode(obj)
                locations[obj.id] = self.kind.project_of(obj)
        await self.cache.fill(self.kind.name, entries, locations)

    def remember(self, obj: T | None) -> T | None:
        if obj is not None:
            self.cache.remember(self.kind.name, obj.id, self.kind.project_of(obj))
        return obj

    def _decoded(self, ident: str, text: str) -> T | None:
        """The cached object, or None (counted as an error) when it is unreadable or not what its key
        names: another id, another project, or an object of a state that is never cached."""
        try:
            obj = self.kind.decode(text)
        except (ValueError, KeyError, TypeError):
            obj = None
        if (
            obj is None
            or obj.id != ident
            or self.cache.known_key(self.kind.name, ident) != self.key(obj)
            or not self.kind.cacheable(obj)
        ):
            self.cache.count_error(self.kind.name)
            return None
        return obj
