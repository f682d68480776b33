"""GPUs as the parent processes see them (nvidia-smi, CUDA_VISIBLE_DEVICES) and how they are shared out."""

from __future__ import annotations

from ptw.executors.device import Gpu, GpuLeases, parse_gpus, resource_classes_for, visible_gpus

SMI = """0, GPU-aaaa, NVIDIA H100 80GB HBM3, 81559
1, GPU-bbbb, NVIDIA H100 80GB HBM3, 81559
2, GPU-cccc, NVIDIA A10G, [N/A]
"""


class Exited:
    returncode = 0


class Running:
    returncode = None


def test_nvidia_smi_rows_become_gpus_with_their_memory() -> None:
    gpus = parse_gpus(SMI + "garbage line\n")
    assert [(g.id, g.index, g.name, g.memory_mib) for g in gpus] == [
        ("GPU-aaaa", "0", "NVIDIA H100 80GB HBM3", 81559),
        ("GPU-bbbb", "1", "NVIDIA H100 80GB HBM3", 81559),
        ("GPU-cccc", "2", "NVIDIA A10G", 0),
    ]
    assert parse_gpus("") == []  # no nvidia-smi: a CPU machine


def test_cuda_visible_devices_narrows_the_machine_like_cuda_does() -> None:
    assert [g.id for g in visible_gpus({}, SMI)] == ["GPU-aaaa", "GPU-bbbb", "GPU-cccc"]
    assert [g.id for g in visible_gpus({"CUDA_VISIBLE_DEVICES": "2,GPU-aaaa"}, SMI)] == [
        "GPU-cccc",
        "GPU-aaaa",
    ]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": ""}, SMI) == []
    assert [g.id for g in visible_gpus({"CUDA_VISIBLE_DEVICES": "1,-1,0"}, SMI)] == ["GPU-bbbb"]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "0"}, "") == []


def test_each_child_gets_its_own_gpu_until_they_run_out_then_the_least_shared() -> None:
    leases = GpuLeases(parse_gpus(SMI)[:2])
    first, second, third = leases.lease(), leases.lease(), leases.lease()
    assert first is not None and second is not None and third is not None
    assert [first.gpu.id, second.gpu.id, third.gpu.id] == ["GPU-aaaa", "GPU-bbbb", "GPU-aaaa"]
    assert second.env() == {"CUDA_VISIBLE_DEVICES": "GPU-bbbb"}
    first.holder, second.holder, third.holder = Running(), Exited(), Exited()
    assert [leases.lease().gpu.id for _ in range(2)] == ["GPU-bbbb", "GPU-aaaa"]  # type: ignore[union-attr]


def test_a_released_lease_frees_its_gpu_and_no_gpu_means_no_lease() -> None:
    leases = GpuLeases([Gpu("GPU-x", "0", "T4", 15360)])
    lease = leases.lease()
    assert lease is not None
    lease.release()  # the child never started
    assert (other := leases.lease()) is not None and other.gpu.id == "GPU-x"
    assert GpuLeases([]).lease() is None


def test_gpu_executors_take_gpu_and_cpu_runs_cpu_executors_cpu_runs_only() -> None:
    assert resource_classes_for("cuda:0") == ("cpu", "gpu")
    assert resource_classes_for("cpu") == ("cpu",)


def test_training_code_does_not_inherit_the_control_plane_credentials() -> None:
    from ptw.executors.warm_runner import training_environ

    env = training_environ(
        {"PTW_DATABASE_URL": "postgresql://u:secret@db/ptw", "PTW_REDIS_URL": "redis://:pw@r", "PATH": "/bin"}
    )
    assert env == {"PATH": "/bin"}
