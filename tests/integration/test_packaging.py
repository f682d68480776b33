"""The wheel installs one top-level package, ``ptw``, and carries every layer and its data under it."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (path,) = out.glob("pytorch_workflow-*.whl")
    return zipfile.ZipFile(path)


def test_wheel_has_one_top_level_package(wheel: zipfile.ZipFile) -> None:
    tops = {name.split("/")[0] for name in wheel.namelist() if not name.split("/")[0].endswith(".dist-info")}
    assert tops == {"ptw"}
    top_level = next(n for n in wheel.namelist() if n.endswith(".dist-info/top_level.txt"))
    assert wheel.read(top_level).decode().split() == ["ptw"]


def test_wheel_maps_every_layer_with_its_data(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    for module in (
        "ptw/cli.py",
        "ptw/commands/runs.py",
        "ptw/tracking/run.py",
        "ptw/integrations/lightning.py",
        "ptw/api/app.py",
        "ptw/domain/runs.py",
        "ptw/executors/runner.py",
        "ptw/infra/bootstrap.py",
        "ptw/infra/db/migrations/env.py",
        "ptw/api/ui/static/index.html",
    ):
        assert module in names, module
    assert any(n.startswith("ptw/infra/db/migrations/versions/") for n in names)


def test_a_users_own_api_and_domain_packages_import_beside_ours(
    wheel: zipfile.ZipFile, tmp_path: Path
) -> None:
    installed = tmp_path / "site"
    wheel.extractall(installed)
    user = tmp_path / "user"
    for name in ("api", "domain"):
        (user / name).mkdir(parents=True)
        (user / name / "__init__.py").write_text(f"OWNER = 'user {name}'\n")
    script = (
        "import api, domain, ptw.api.app, ptw.domain.runs;"
        "print(api.OWNER, domain.OWNER, ptw.api.app.__file__, ptw.domain.runs.__file__, sep='|')"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=user,
        env={"PYTHONPATH": f"{user}:{installed}", "PATH": "/usr/bin:/bin"},
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    user_api, user_domain, our_api, our_domain = out.split("|")
    assert (user_api, user_domain) == ("user api", "user domain")
    assert our_api.startswith(str(installed)) and our_domain.startswith(str(installed))
