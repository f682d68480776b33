"""Settings from the environment (``PTW_*``): which adapters run, where data lives, what is exposed."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PTW_", env_file=None, extra="ignore")

    env: Literal["development", "production"] = "development"
    data_dir: Path = Field(default=Path(".ptw"), description="embedded database, artifacts and the local key")
    database_url: str | None = Field(default=None, description="default: SQLite in data_dir")
    redis_url: str | None = Field(default=None, description="unset: in-process bus, queue and cache")
    redis_prefix: str = Field(default="ptw", min_length=1, description="prefix of every Redis key")
    worker_pools: list[str] = Field(
        default_factory=list,
        description="the executor pools a `ptw worker` serves, and only those (empty: the shared pool)",
    )
    worker_slots: int = Field(default=1, ge=1, le=64, description="runs at a time of one `ptw worker`")
    # arq polls its queue: this bounds the wait of a run for a free worker (the warm-dispatch target).
    worker_poll_delay: float = Field(default=0.02, gt=0, le=5, description="seconds between queue polls")
    executor_heartbeat: float = Field(default=5.0, gt=0, description="seconds between executor heartbeats")
    cloudwatch_namespace: str | None = Field(
        default=None, description="set: the API publishes QueueDepth and RunningRuns there every minute"
    )
    executors: int = Field(default=2, ge=0, le=64, description="local executor slots of `ptw serve`")
    graphiql: bool | None = Field(default=None, description="default: on except in production")
    introspection: bool | None = Field(default=None, description="default: on except in production")
    field_suggestions: bool | None = Field(
        default=None, description="'Did you mean ...' in validation errors; default: on except in production"
    )
    # Limits of the API (docs/security.md); generous enough that the UI and the SDK never meet them.
    max_request_bytes: int = Field(default=1_048_576, ge=1024, description="HTTP bodies above: 413")
    max_query_cost: int = Field(default=100_000, ge=1, description="estimated fields a document may ask")
    max_input_depth: int = Field(default=32, ge=2, description="nesting of one input value (JSON params)")
    # 250: strawberry turns each item of a list of input objects into a Python object on the event loop
    # (~0.15 ms a logMetrics point on a 2-core VM), so a list of 1,000 held a replica for ~150 ms.
    max_input_list: int = Field(default=250, ge=10, description="items of one input list (logMetrics points)")
    rate_limit: float = Field(default=100.0, ge=0, description="operations a second per API key; 0: off")
    rate_limit_burst: int | None = Field(default=None, ge=1, description="default: 10 seconds' worth")
    auth_failure_rate: float = Field(
        default=1.0, ge=0, description="failed authentications a second per client address; 0: off"
    )
    auth_failure_burst: int = Field(default=30, ge=1, description="failures an address may make at once")
    ws_init_timeout: float = Field(default=10.0, gt=0, description="seconds to send connection_init")
    ws_max_subscriptions: int = Field(default=100, ge=1, description="operations open per connection")
    ws_max_message_bytes: int = Field(default=262_144, ge=1024, description="larger messages close 1009")
    ws_send_timeout: float = Field(
        default=10.0, gt=0, description="seconds a send may wait on a client that does not read: closed 1008"
    )
    ws_keepalive: float = Field(default=15.0, gt=0, description="seconds between keep-alive messages")
    max_queued_runs: int = Field(default=500, ge=1, description="runs one project may have waiting")
    max_optimizations: int = Field(default=20, ge=1, description="unfinished optimizations of one project")
    max_running_runs: int | None = Field(
        default=None, ge=1, description="runs one project may have started at once (unset: unlimited)"
    )
    max_attempts: int = Field(default=3, ge=1)
    # Reliability (docs/reliability.md): a run whose heartbeat (every `executor_heartbeat` s) stayed the
    # same for `run_lost_after` s, as API replicas check every `run_monitor_interval` s, is retried.
    run_lost_after: float = Field(default=20.0, gt=0, description="seconds of silence: executor lost")
    run_monitor_interval: float = Field(default=4.0, gt=0, description="seconds between run monitor checks")
    drain_grace: float = Field(default=20.0, ge=0, description="seconds a stopping worker gives its runs")
    reconcile_interval: float = Field(default=60.0, gt=0, description="seconds between queue reconciliations")
    placement_timeout: float = Field(
        default=120.0,
        gt=0,
        description="seconds a run may wait with no executor of its class before it says so",
    )
    artifacts_url: str | None = Field(
        default=None, description="file:///path or s3://bucket/prefix; default: data_dir/artifacts"
    )
    s3_endpoint_url: str | None = Field(default=None, description="S3-compatible endpoint; unset: AWS S3")
    checkpoint_key: SecretStr | None = Field(
        default=None, description="256-bit key (64 hex digits or base64): checkpoints sealed with AES-GCM"
    )
    metrics_token: SecretStr | None = Field(
        default=None, description="set: /metrics asks for it (Bearer); unset: /metrics answers loopback only"
    )
    log_level: str = "info"

    @field_validator("artifacts_url")
    @classmethod
    def _known_store(cls, url: str | None) -> str | None:
        if url and not url.startswith(("file:///", "s3://")):
            raise ValueError("use file:///absolute/path or s3://bucket/prefix")
        return url or None

    @field_validator("checkpoint_key")
    @classmethod
    def _key_of_256_bits(cls, key: SecretStr | None) -> SecretStr | None:
        if key is None or not key.get_secret_value():
            return None
        from ptw.executors.artifacts.crypto import parse_key

        parse_key(key.get_secret_value())  # refused at start, not at a run's first checkpoint
        return key

    def runner_env(self) -> dict[str, str]:
        """What executor children are told about the artifact store: they read the environment only."""
        env = {"PTW_ARTIFACTS_URL": self.artifacts_url or self.artifacts_dir.as_uri()}
        if self.s3_endpoint_url:
            env["PTW_S3_ENDPOINT_URL"] = self.s3_endpoint_url
        if self.checkpoint_key is not None:
            env["PTW_CHECKPOINT_KEY"] = self.checkpoint_key.get_secret_value()
        return env

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'ptw.db').resolve()}"

    @property
    def embedded(self) -> bool:
        return not self.redis_url  # PTW_REDIS_URL set but empty is unset

    @property
    def artifacts_dir(self) -> Path:
        return (self.data_dir / "artifacts").resolve()

    @property
    def local_key_file(self) -> Path:
        return (self.data_dir / "admin.key").resolve()

    @property
    def graphiql_enabled(self) -> bool:
        return self.graphiql if self.graphiql is not None else self.env != "production"

    @property
    def introspection_enabled(self) -> bool:
        return self.introspection if self.introspection is not None else self.env != "production"

    @property
    def field_suggestions_enabled(self) -> bool:
        return self.field_suggestions if self.field_suggestions is not None else self.env != "production"
