"""What a workflow may declare about the processes, nodes, memory and pool of its runs."""

from __future__ import annotations

import pytest

from ptw.domain.errors import BadInput
from ptw.domain.workflows import Resources, check_resources


def test_a_run_waits_in_the_queue_of_its_pool_and_kind() -> None:
    assert Resources().resource_class == "cpu"
    assert Resources(gpus=2).resource_class == "gpu"
    assert Resources(pool="research").resource_class == "research/cpu"
    assert Resources(gpus=1, pool="research").resource_class == "research/gpu"


def test_processes_default_to_one_per_gpu_or_one_on_the_cpu() -> None:
    assert Resources().processes == 1 and not Resources().distributed
    assert Resources(gpus=4).processes == 4
    assert Resources(gpus=4, processes_per_node=2).processes == 2
    assert Resources(processes_per_node=2).distributed
    assert Resources(gpus=1, processes_per_node=1).distributed  # declared: a group of one
    assert Resources(gpus=2).distributed and not Resources(gpus=1).distributed
    assert Resources(nodes=2).distributed


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"processes_per_node": 0}, "processesPerNode"),
        ({"processes_per_node": 65}, "processesPerNode"),
        ({"nodes": 0}, "nodes"),
        ({"nodes": 65}, "nodes"),
        ({"memory_mb": 10}, "memoryMb"),
        ({"pool": "Research Team"}, "pool"),
        ({"pool": ""}, "pool"),
    ],
)
def test_impossible_resources_are_refused_with_the_field(arguments: dict[str, object], field: str) -> None:
    with pytest.raises(BadInput) as refused:
        check_resources(None, None, **arguments)  # type: ignore[arg-type]
    assert refused.value.details["field"] == field


def test_declared_resources_are_kept() -> None:
    resources = check_resources(1, 60, processes_per_node=2, nodes=1, memory_mb=512, pool="research")
    assert resources == Resources(1, 60, 2, 1, 512, "research")
