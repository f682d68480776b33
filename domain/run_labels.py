"""What a person calls a run: its readable name, its tags and its notes, and the rules they keep."""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence

from ptw.domain.errors import BadInput

MAX_NAME = 120
MAX_TAG = 64
MAX_TAGS = 32
MAX_NOTES = 20_000
# A short id is the start of a run's uuid, as the web UI and the CLI print it.
SHORT_ID_LENGTH = 8
MIN_SHORT_ID = 4
_SHORT_ID = re.compile(r"^[0-9a-f][0-9a-f-]{0,35}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

_ADJECTIVES = (
    "amber autumn bold brave bright calm clever cosmic crisp daring deep eager fancy fierce gentle golden "
    "grand happy hidden jolly keen lively lucky lunar merry misty noble polar proud quick quiet rapid royal "
    "rustic shiny silent silver smooth snowy solar spry steady stellar sunny swift tidy vivid warm wild wise"
).split()
_NOUNS = (
    "badger bison cedar comet condor coral crane delta dune eagle ember falcon fern fjord fox galaxy gecko "
    "glacier harbor hawk heron island jaguar lagoon lemur lynx maple meadow meteor moose nebula otter owl "
    "panda pine planet quasar raven reef river sparrow summit tiger tundra valley walrus willow wolf zebra"
).split()


def short_id(run_id: str) -> str:
    """The id a person reads and types: the first characters of the run's uuid."""
    return run_id[:SHORT_ID_LENGTH]


def is_short_id(text: str) -> bool:
    """A prefix of a uuid (lower-case hex, dashes allowed), never a global id (those are base64)."""
    return bool(_SHORT_ID.match(text))


def default_name(run_id: str) -> str:
    """A readable name taken from the run's id, stable and needing no lookup: ``swift-otter-3f2a``."""
    number = zlib.crc32(run_id.encode())
    adjective = _ADJECTIVES[number % len(_ADJECTIVES)]
    noun = _NOUNS[(number // len(_ADJECTIVES)) % len(_NOUNS)]
    return f"{adjective}-{noun}-{run_id[:4]}"


def checked_name(name: str) -> str:
    name = name.strip()
    if not 0 < len(name) <= MAX_NAME or _CONTROL.search(name):
        raise BadInput(f"a run's name must be 1-{MAX_NAME} printable characters", field="name")
    return name


def checked_tags(tags: Sequence[str]) -> list[str]:
    """Tags trimmed and de-duplicated, in the order given."""
    if isinstance(tags, str) or len(tags) > MAX_TAGS:
        raise BadInput(f"a run has at most {MAX_TAGS} tags, given as a list", field="tags")
    kept: list[str] = []
    for tag in tags:
        tag = tag.strip() if isinstance(tag, str) else ""
        if not 0 < len(tag) <= MAX_TAG or _CONTROL.search(tag) or "," in tag:
            raise BadInput(f"a tag must be 1-{MAX_TAG} printable characters without a comma", field="tags")
        if tag not in kept:
            kept.append(tag)
    return kept


def checked_notes(notes: str) -> str | None:
    """Empty notes clear them."""
    if len(notes) > MAX_NOTES or "\x00" in notes:
        raise BadInput(f"notes must be at most {MAX_NOTES} characters", field="notes")
    return notes or None
