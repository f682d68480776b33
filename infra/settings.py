"""Settings from the environment (``PTW_*``): which adapters run, where data lives, what is exposed."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PTW_", env_file=None, extra="ignore")

    env: Literal["development", "production"] = "development"
    data_dir: Path = Field(default=Path(".ptw"), description="embedded database, artifacts and the local key")
    database_url: str | None = Field(default=None, description="default: SQLite in data_dir")
    redis_url: str | None = Field(default=None, description="unset: in-process bus, queue and cache")
    redis_prefix: str = Field(default="ptw", min_length=1, description="prefix of every Redis key")
    worker_slots: int = Field(default=1, ge=1, le=64, description="runs at a time of one `ptw worker`")
    # arq polls its queue: this bounds the wait of a run for a free worker (the warm-dispatch target).
    worker_poll_delay: float = Field(default=0.02, gt=0, le=5, description="seconds between queue polls")
    executor_heartbeat: float = Field(default=5.0, gt=0, description="seconds between executor heartbeats")
    executors: int = Field(default=2, ge=0, le=64, description="local executor slots of `ptw serve`")
    graphiql: bool | None = Field(default=None, description="default: on except in production")
    introspection: bool | None = Field(default=None, description="default: on except in production")
    max_attempts: int = Field(default=3, ge=1)
    log_level: str = "info"

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
