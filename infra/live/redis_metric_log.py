"""The metric log of production mode: one Redis stream per run, of batches appended by the executors.

An entry is the batch's binary columns (``metric_columns``). Followers read it after their cursor (XREAD
BLOCK wakes as soon as a batch is added), the ingester moves it into PostgreSQL through a consumer group
and trims what is stored.

A batch's seq is its stream entry ID ``<ms>-<n>`` packed in one integer: ``ms << 20 | n``. It orders
batches like the stream does, fits PostgreSQL's bigint for millennia (ms < 2**43), and leaves ``n``
(entries within one millisecond, or while Redis's clock stands still) room for a million. The GraphQL
cursor is that integer, as an opaque string.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis

from ptw.domain.metrics import MetricBatch, Series
from ptw.domain.ports import LogRead
from ptw.infra import redis_keys
from ptw.infra.live.metric_columns import decode_series, encode_series

SEQ_BITS = 20
_N_MASK = (1 << SEQ_BITS) - 1

# The trim mark only grows, and moves with the trim in one step: a reader that finds a batch missing
# below the mark knows it was stored (the ingester trims only what is stored). IDs are compared as
# (ms, n) numbers, both exact in Lua's doubles.
_TRIM = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local function parse(id)
  local ms, n = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(n)
end
local new_ms, new_n = parse(ARGV[1])
local current = redis.call('GET', KEYS[2])
if current then
  local ms, n = parse(current)
  if ms > new_ms or (ms == new_ms and n >= new_n) then return 0 end
end
redis.call('SET', KEYS[2], ARGV[1])
return redis.call('XTRIM', KEYS[1], 'MINID', ARGV[1])
"""

# A run's stream is forgotten only when it is empty (everything stored and trimmed) at that very moment:
# a batch appended later re-creates the stream and re-enters the run in the active set.
_RETIRE = """
if redis.call('XLEN', KEYS[1]) > 0 then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('SREM', KEYS[3], ARGV[1])
return 1
"""


def seq_of(entry_id: bytes | str) -> int:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, n = text.partition("-")
    if int(n) > _N_MASK:
        raise ValueError(f"stream entry {text}: more than {_N_MASK + 1} entries in one millisecond")
    return int(ms) << SEQ_BITS | int(n)


def entry_id(seq: int) -> str:
    return f"{seq >> SEQ_BITS}-{seq & _N_MASK}"


def decode_batch(run_id: str, entry: bytes | str, fields: dict[Any, Any]) -> MetricBatch:
    return MetricBatch(run_id=run_id, seq=seq_of(entry), series=decode_series(fields))


class RedisMetricLog:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis, self.prefix = redis, prefix
        self._trim = redis.register_script(_TRIM)
        self._retire = redis.register_script(_RETIRE)

    def stream(self, run_id: str) -> str:
        return redis_keys.metric_stream(self.prefix, run_id)

    def trim_mark(self, run_id: str) -> str:
        return redis_keys.metric_trim_mark(self.prefix, run_id)

    @property
    def active_set(self) -> str:
        return redis_keys.metric_streams_active(self.prefix)

    async def append(self, run_id: str, series: Sequence[Series]) -> int:
        data = encode_series(series)
        async with self.redis.pipeline(transaction=False) as pipe:
            # XADD first: a run in the active set always has its stream (until it is retired).
            pipe.xadd(self.stream(run_id), data)  # type: ignore[arg-type]  # (dict is invariant)
            pipe.sadd(self.active_set, run_id)
            added, _ = await pipe.execute()
        return seq_of(added)

    async def read_after(
        self, run_id: str, after_seq: int, block_ms: int | None = None, count: int = 100
    ) -> LogRead:
        stream = self.stream(run_id)
        async with self.redis.pipeline(transaction=False) as pipe:
            # Sent together: the mark is read after the entries, so it covers every trim they missed.
            pipe.xread({stream: entry_id(after_seq)}, count=count, block=block_ms)
            pipe.get(self.trim_mark(run_id))
            found, mark = await pipe.execute()
        entries: list[Any] = found[0][1] if found else []
        batches = [decode_batch(run_id, entry, fields) for entry, fields in entries]
        return LogRead(batches=batches, trimmed_below=seq_of(mark) if mark else 0)

    async def trim(self, run_id: str, upto_seq: int) -> None:
        """Drop the entries of a seq below ``upto_seq`` (the caller vouches that they are stored)."""
        await self._trim(keys=[self.stream(run_id), self.trim_mark(run_id)], args=[entry_id(upto_seq)])

    async def active_runs(self) -> list[str]:
        """Runs whose stream may hold batches not yet stored."""
        members: set[Any] = await self.redis.smembers(self.active_set)  # type: ignore[misc]
        return sorted(m.decode() if isinstance(m, bytes) else m for m in members)

    async def retire(self, run_id: str) -> bool:
        """Forget the run's stream if it is empty; whether it was."""
        keys = [self.stream(run_id), self.trim_mark(run_id), self.active_set]
        return bool(await self._retire(keys=keys, args=[run_id]))
