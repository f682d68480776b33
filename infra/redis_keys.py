"""Every Redis key name of production mode, each under the configured prefix (``PTW_REDIS_PREFIX``).

Like arq's ``constants.py``: one place that says what lives in Redis, so a deployment (or a test with a
random prefix) can share a Redis database with others and clean up only its own keys.
"""

from __future__ import annotations

# --- the run queue (arq) -----------------------------------------------------------------------------
# arq keeps its own bookkeeping under fixed ``arq:job:<job id>``, ``arq:in-progress:<job id>`` and
# ``arq:result:<job id>`` keys; the job id starts with the prefix, so those keys carry it too.


def run_queue(prefix: str, resource_class: str) -> str:
    """The arq queue (a sorted set of job ids) of one resource class: ``cpu`` or ``gpu``."""
    return f"{prefix}:queue:{resource_class}"


def run_queue_classes(prefix: str) -> str:
    """A set: every resource class a run was queued in (pools add their own: ``research/cpu``)."""
    return f"{prefix}:queue-classes"


def run_queue_turns(prefix: str, resource_class: str) -> str:
    """A hash: each project's virtual finish time in the queue of ``resource_class`` (fair ordering)."""
    return f"{prefix}:queue-turns:{resource_class}"


def run_job_id(prefix: str, run_id: str, attempt: int) -> str:
    """The arq job id of one attempt of a run: enqueuing the same attempt twice is a no-op."""
    return f"{prefix}:run:{run_id}:{attempt}"


# --- the executor registry ------------------------------------------------------------------------------


def executor(prefix: str, executor_id: str) -> str:
    """The state of one executor slot (JSON); it expires unless the executor keeps beating."""
    return f"{prefix}:executor:{executor_id}"


def executors_index(prefix: str) -> str:
    """A sorted set of executor ids scored by when their announcement expires (no SCAN needed)."""
    return f"{prefix}:executors"


def autoscalers(prefix: str) -> str:
    """A hash of autoscaler id -> its latest decision (JSON with its expiry time), read by the pool."""
    return f"{prefix}:autoscalers"


# --- the read cache (infra/cache) -----------------------------------------------------------------------
# ``v2`` is the codec version: a release that changes what a cached value holds bumps it, so replicas of
# the old and the new release never read each other's values during a rolling deploy.


def cache_project_segment(project_id: str | None) -> str:
    """The project part of a cache key; built-in workflows (no project) use ``_``, never a project id."""
    return "_" if project_id is None else project_id


def cached_object(prefix: str, project_id: str | None, kind: str, ident: str) -> str:
    """The cached JSON of one object (``kind``: workflow, workflow-name, run, project) of a project."""
    return f"{prefix}:cache:v2:p:{cache_project_segment(project_id)}:{kind}:{ident}"


def cached_location(prefix: str, kind: str, ident: str) -> str:
    """Which project an object belongs to (its project segment), for lookups that only know the id."""
    return f"{prefix}:cache:v2:where:{kind}:{ident}"


# --- live events and metric streams ---------------------------------------------------------------------


def event_channel(prefix: str, topic: str) -> str:
    """The pub/sub channel of one bus topic (``run:<id>``, ``project:<id>``)."""
    return f"{prefix}:events:{topic}"


def metric_stream(prefix: str, run_id: str) -> str:
    """The Redis stream of one run's metric batches (the metric log), read by followers and the ingester.
    The run id is a hash tag, so a cluster keeps the stream and its trim mark on one node (one script)."""
    return f"{prefix}:metrics:{{{run_id}}}"


def metric_trim_mark(prefix: str, run_id: str) -> str:
    """The stream ID below which the run's metric stream was trimmed (only ever grows)."""
    return f"{prefix}:metrics-trimmed:{{{run_id}}}"


def metric_set_aside(prefix: str) -> str:
    """The stream of metric log entries the ingester could not store, each with its reason (for admins)."""
    return f"{prefix}:metrics-set-aside"


def metric_set_aside_count(prefix: str) -> str:
    """How many entries were ever set aside (``ptw_ingest_set_aside_total``; the stream itself is capped)."""
    return f"{prefix}:metrics-set-aside-count"


def metric_streams_active(prefix: str) -> str:
    """A set of the run ids whose metric stream the ingester still has to drain."""
    return f"{prefix}:metric-streams"


# --- request rate limits (infra/ratelimit.py) -----------------------------------------------------------


def rate_limit(prefix: str, key_id: str) -> str:
    """A hash (tokens, at) holding one API key's token bucket; it expires once the bucket is full again."""
    return f"{prefix}:ratelimit:{key_id}"
