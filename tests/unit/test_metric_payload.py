"""runMetrics' payload: one GraphQL object per batch sent, shared by every subscriber that is sent it."""

from __future__ import annotations

from ptw.api.metrics import types
from ptw.domain.metrics import MetricBatch, Series


def batch(seq: int, *keys: str, n: int = 3) -> MetricBatch:
    return MetricBatch("r1", seq, tuple(Series.of(k, range(n), [0.5] * n, [10.0] * n) for k in keys))


def test_subscribers_sent_the_same_batch_share_its_payload() -> None:
    first = types.MetricBatch.from_domain(batch(7, "loss", "acc"))
    # Another subscriber's follower reads the same entry of the log: another domain object, same content.
    assert types.MetricBatch.from_domain(batch(7, "loss", "acc")) is first
    assert first.points() is first.points()  # built once
    assert first.columns() == {
        "loss": {"steps": [0, 1, 2], "values": [0.5] * 3, "timestamps": [10.0] * 3},
        "acc": {"steps": [0, 1, 2], "values": [0.5] * 3, "timestamps": [10.0] * 3},
    }


def test_a_different_selection_or_merge_gets_its_own_payload() -> None:
    every = types.MetricBatch.from_domain(batch(8, "loss", "acc"))
    assert types.MetricBatch.from_domain(batch(8, "loss")) is not every  # keys=["loss"]
    assert (
        types.MetricBatch.from_domain(batch(8, "loss", "acc", n=5)) is not every
    )  # merged with earlier ones
    assert [p.key for p in types.MetricBatch.from_domain(batch(8, "loss")).points()] == ["loss"] * 3


def test_the_shared_payloads_are_bounded_by_their_points() -> None:
    for seq in range(100, 100 + 3 * types.RECENT_POINTS // 1000):
        types.MetricBatch.from_domain(batch(seq, "loss", n=1000))
    assert sum(len(b.model) for b in types._recent.values()) <= types.RECENT_POINTS
