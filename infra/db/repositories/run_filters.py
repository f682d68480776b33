"""The SQL of a run list's filters and metric ordering (``RunQuery``): one statement, on either dialect.

Tags and params are read from the run row's JSON (JSONB containment on PostgreSQL, ``json_each`` /
``json_extract`` on SQLite); a metric's latest value comes from its ``metric_series`` row, which keeps it on
write, so neither a filter nor an order by a metric reads a block of points.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import ColumnElement, Select, Table, and_, cast, exists, func, literal, or_, select
from sqlalchemy.dialects.postgresql import JSONB

from ptw.domain.runs import MetricCondition, RunQuery
from ptw.infra.db.models import Base, MetricSeriesRow

series = Base.metadata.tables[MetricSeriesRow.__tablename__]


def filtered(stmt: Select[Any], runs: Table, query: RunQuery, postgres: bool) -> Select[Any]:
    for tag in query.tags:
        stmt = stmt.where(_has_tag(runs, tag, postgres))
    for name, value in query.params:
        stmt = stmt.where(_has_param(runs, name, value, postgres))
    for condition in query.metrics:
        stmt = stmt.where(exists().where(series.c.run_id == runs.c.id, *_meets(series, condition)))
    return stmt


def ordered_by_metric(
    stmt: Select[Any], runs: Table, key: str, after: str | None, descending: bool, limit: int
) -> Select[Any]:
    """Runs having ``key`` by its latest value, then id; keyset-paged after the run ``after``."""
    ordering = series.alias("ordering")
    stmt = stmt.join(
        ordering,
        and_(ordering.c.run_id == runs.c.id, ordering.c.key == key, ordering.c.latest_value.is_not(None)),
    )
    if after is not None:
        mark = (
            select(series.c.latest_value)
            .where(series.c.run_id == after, series.c.key == key)
            .scalar_subquery()
        )
        value, ident = ordering.c.latest_value, runs.c.id
        if descending:
            stmt = stmt.where(or_(value < mark, and_(value == mark, ident < literal(after))))
        else:
            stmt = stmt.where(or_(value > mark, and_(value == mark, ident > literal(after))))
    columns = (ordering.c.latest_value, runs.c.id)
    return stmt.order_by(*(c.desc() if descending else c.asc() for c in columns)).limit(limit)


def _has_tag(runs: Table, tag: str, postgres: bool) -> ColumnElement[bool]:
    if postgres:
        return runs.c.tags.op("@>")(cast(literal(json.dumps([tag])), JSONB))
    element = func.json_each(runs.c.tags).table_valued("value").alias("tag")
    return exists().select_from(element).where(element.c.value == tag)


def _has_param(runs: Table, name: str, value: Any, postgres: bool) -> ColumnElement[bool]:
    if postgres:  # JSONB compares numbers by value: 0.5 and 0.50, 3 and 3.0 are alike
        return runs.c.params.op("@>")(cast(literal(json.dumps({name: value})), JSONB))
    path = f'$."{name}"'  # names are checked by the domain: no quote can end the path
    if isinstance(value, bool):
        return func.json_type(runs.c.params, path) == ("true" if value else "false")
    return func.json_extract(runs.c.params, path) == value


def _meets(table: Table, condition: MetricCondition) -> list[ColumnElement[bool]]:
    value = table.c.latest_value
    compared = {
        "GT": value > condition.value,
        "GTE": value >= condition.value,
        "LT": value < condition.value,
        "LTE": value <= condition.value,
    }[condition.op]
    return [table.c.key == condition.key, value.is_not(None), compared]
