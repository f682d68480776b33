"""The direction of an objective (minimize or maximize), shared by searches and checkpoint retention."""

from __future__ import annotations

import strawberry

from ptw.domain import optimizations

Direction = strawberry.enum(optimizations.Direction)
