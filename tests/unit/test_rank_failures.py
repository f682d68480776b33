"""How the end of a distributed attempt is read from the elastic launcher's failures: retried or failed."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from ptw.executors.ranks import failure_message


def failed(**failures: Any) -> Exception:
    exc = Exception("ChildFailedError")
    exc.failures = {int(rank[1:]): failure for rank, failure in failures.items()}  # type: ignore[attr-defined]
    return exc


def raised(message: str) -> SimpleNamespace:
    data = {"message": {"message": message, "extraInfo": {"py_callstack": "Traceback ...\n" + message}}}
    return SimpleNamespace(exitcode=1, error_file_data=data, message=message)


KILLED = SimpleNamespace(exitcode=-9, error_file_data={"message": "<NONE>"}, message="Signal 9 (SIGKILL)")


def test_a_rank_that_raised_fails_the_run_with_its_error() -> None:
    error = failure_message(failed(r1=raised("ValueError: bad batch")))
    assert error is not None
    assert error.type == "ValueError" and error.message == "bad batch (rank 1)"


def test_a_rank_that_died_makes_the_attempt_lost_even_when_its_peers_raised() -> None:
    peer = raised("RuntimeError: [gloo/transport/tcp/pair.cc:553] Connection closed by peer")
    assert failure_message(failed(r1=KILLED)) is None
    assert failure_message(failed(r0=peer, r1=KILLED)) is None


def test_a_peer_lost_under_a_rank_is_a_crash_not_the_training_codes_error() -> None:
    peer = raised("RuntimeError: [gloo/transport/tcp/pair.cc:537] Read error: Connection reset by peer")
    assert failure_message(failed(r0=peer)) is None
    error = failure_message(failed(r0=peer, r1=raised("KeyError: 'x'")))
    assert error is not None and error.message == "'x' (rank 1)"
