"""Packaging: the repository's top-level folders become sub-packages of the single import name ``ptw``.

The folders keep their place in the repository (``api/``, ``domain/``, ``executors/``, ``infra/``); installed,
they are ``ptw.api``, ``ptw.domain``, ``ptw.executors`` and ``ptw.infra``, so that nothing of ours shadows a
user's own ``api`` or ``domain`` package. pyproject.toml holds everything else; only this mapping needs code.
"""

from setuptools import Extension, find_packages, setup

LAYERS = ("api", "domain", "executors", "infra")

setup(
    packages=["ptw"]
    + [f"ptw.{name}" for name in find_packages("ptw")]  # the CLI's commands, the tracking client, ...
    + [f"ptw.{name}" for name in find_packages(include=[f"{layer}*" for layer in LAYERS])],
    package_dir={"ptw": "ptw", **{f"ptw.{layer}": layer for layer in LAYERS}},
    # ctx.log's hot path and its sender thread (executors/_metric_log.c). Optional: where it cannot be
    # built (no C compiler), the SDK logs in pure Python, slower but the same in every other way.
    ext_modules=[
        Extension(
            "ptw.executors._metric_log",
            ["executors/_metric_log.c"],
            extra_compile_args=["-O2", "-std=c11", "-Wall"],
            optional=True,
        )
    ],
)
