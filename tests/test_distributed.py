"""Data-parallel training and the device path: sharding, device choice, every tensor on the
state's device (checked on the "meta" device, since CI has no GPU), and real 2-process gloo jobs
started by torchrun (a step, rank-0-only writes, resume across process counts, a failing rank).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_pre_hook
from torch.overrides import TorchFunctionMode

import qrnn
from qrnn.backends.base import Program
from qrnn.cli import main
from qrnn.distributed import World, collective_timeout, resolve_device, world_from_env
from qrnn.errors import QRNNError
from qrnn.model import ModelConfig
from qrnn.tasks.base import iterate_batches
from qrnn.testing.cells import random_cell
from qrnn.train import CHECKPOINT_FILE, METRICS_FILE, RunConfig, TrainConfig, Trainer

TINY_TASK = {"delay": 2, "n_train": 48, "n_valid": 16, "n_test": 16}
TINY_FLAGS = [
    "--qubits", "2", "--layers", "1", "--hidden", "6", "--embed-dim", "3", "--batch-size", "8",
    *(f"--task-option={k}={v}" for k, v in TINY_TASK.items()), "-q",
]  # fmt: skip
JOB_TIMEOUT_S = 120  # hard limit on one torchrun job; they take ~10 s


def _config(**train) -> RunConfig:
    return RunConfig(
        task="copying",
        task_options=TINY_TASK,
        model=ModelConfig(n_qubits=2, n_layers=1, hidden=6, embed_dim=3),
        train=TrainConfig(**{"epochs": 2, "batch_size": 8, "steps_per_epoch": 3, **train}),
    )


# -- sharding and the world, without processes ---------------------------------------------------


@pytest.mark.parametrize("size", [2, 3])
def test_the_shards_of_a_step_make_up_its_global_batch(size):
    n, batch = 23, 6  # the last global batch holds 5 samples
    order = torch.randperm(n, generator=torch.Generator().manual_seed(1))
    global_batches = [b for (b,) in iterate_batches((order,), batch)]
    per_rank = [
        [b for (b,) in iterate_batches((World(r, size).shard(order),), batch // size)]
        for r in range(size)
    ]
    assert all(len(batches) == len(global_batches) for batches in per_rank)  # same step count
    for step, expected in enumerate(global_batches):
        union = torch.cat([batches[step] for batches in per_rank])
        assert len(union) == batch
        assert set(expected.tolist()) <= set(union.tolist())
        # Only the last batch is padded, with samples from the start of the order.
        padding = set(order[: size - 1].tolist()) if step == len(global_batches) - 1 else set()
        assert set(union.tolist()) - set(expected.tolist()) <= padding
    every_shard = torch.cat([World(r, size).shard(order) for r in range(size)])
    assert every_shard.unique().tolist() == list(range(n))


def test_one_process_takes_the_whole_order():
    order = torch.randperm(10)
    assert World().shard(order) is order
    assert World().local_batch_size(7) == 7


def test_the_global_batch_must_split_evenly():
    assert World(0, 4).local_batch_size(64) == 16
    with pytest.raises(QRNNError, match="multiple of the 3 processes .got 64"):
        World(1, 3).local_batch_size(64)


def test_batch_seeds_are_per_rank_and_step_and_repeatable():
    seeds = {World(rank, 2).batch_seed(7, step) for rank in range(2) for step in range(50)}
    assert len(seeds) == 100
    assert World(1, 2).batch_seed(7, 3) == World(1, 2).batch_seed(7, 3)


def test_world_from_torchrun_environment():
    assert world_from_env({}) == World()
    env = {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"}
    world = world_from_env(env)
    assert world == World(rank=3, size=4, local_rank=1, local_size=2)
    assert world.distributed and not world.is_main
    with pytest.raises(QRNNError, match="RANK=4 of WORLD_SIZE=4"):
        world_from_env({**env, "RANK": "4"})
    with pytest.raises(QRNNError, match="WORLD_SIZE must be an integer .got 'two'"):
        world_from_env({"WORLD_SIZE": "two"})


def test_collective_timeout_from_environment(monkeypatch):
    monkeypatch.setenv("QRNN_DIST_TIMEOUT", "45")
    assert collective_timeout().total_seconds() == 45
    monkeypatch.setenv("QRNN_DIST_TIMEOUT", "-1")
    with pytest.raises(QRNNError, match="positive number of seconds .got '-1'"):
        collective_timeout()


# -- device choice -------------------------------------------------------------------------------


@pytest.fixture
def two_gpus(monkeypatch):
    """Pretend torch sees two CUDA devices (resolve_device only asks these two questions)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)


def test_cuda_means_the_local_rank_gpu(two_gpus):
    assert resolve_device("cuda", World(3, 4, 1, 2)) == torch.device("cuda", 1)
    assert resolve_device("cuda", World()) == torch.device("cuda")
    assert resolve_device("cuda:1", World()) == torch.device("cuda", 1)
    assert resolve_device("cuda:0", World(1, 2, 0, 1)) == torch.device("cuda", 0)  # 1 per node


@pytest.mark.parametrize(
    ("requested", "world", "message"),
    [
        ("cuda:1", World(0, 2, 0, 2), "each takes cuda:LOCAL_RANK: pass device cuda"),
        ("cuda:2", World(), "torch sees 2 CUDA device.s. .cuda:0 .. cuda:1"),
        ("meta", World(0, 2), "runs on cpu .gloo. or cuda .NCCL., not 'meta'"),
        ("gpu", World(), "device must be cpu, cuda or cuda:N .got 'gpu'"),
    ],
)
def test_devices_that_cannot_be_had_are_refused(two_gpus, requested, world, message):
    with pytest.raises(QRNNError, match=message):
        resolve_device(requested, world)


def test_cuda_without_cuda_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(QRNNError, match="'cuda:0' requested but torch sees no CUDA device"):
        resolve_device("cuda:0", World())


def test_cli_refuses_every_backend_that_cannot_run_on_the_gpu(two_gpus, capsys, tmp_path):
    from qrnn.registry import REGISTRY

    names = qrnn.list_backends()  # loads the plugins into the registry
    cpu_only = [n for n in names if "cuda" not in REGISTRY.lookup(n).capabilities.devices]
    assert "torch.statevector" not in cpu_only and "numpy.statevector" in cpu_only
    for name in cpu_only:
        argv = ["train", "copying", "--backend", name, "--device", "cuda", *TINY_FLAGS]
        assert main([*argv, "--run-dir", str(tmp_path / "run")]) == 2, name
        assert f"{name!r} runs on ['cpu'], not 'cuda'" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


# -- everything on the state's device, checked on "meta" ------------------------------------------


class CPUTensorSpy(TorchFunctionMode):
    """Records every torch call that gets a CPU tensor of one or more dimensions. With the
    state on another device such a tensor is a table left behind or a silent CPU round trip."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if any(t.device.type == "cpu" and t.dim() > 0 for t in _tensors((args, kwargs))):
            self.calls.append(getattr(func, "__name__", repr(func)))
        return func(*args, **kwargs)


def _tensors(obj, seen=None):
    """Every tensor reachable from ``obj`` through containers and qrnn objects' attributes."""
    seen = set() if seen is None else seen
    if isinstance(obj, torch.Tensor):
        yield obj
        return
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, dict):
        children = list(obj.values())
    elif isinstance(obj, (list, tuple)):
        children = list(obj)
    elif type(obj).__module__.startswith("qrnn.") and hasattr(obj, "__dict__"):
        children = list(vars(obj).values())
    else:
        return
    for child in children:
        yield from _tensors(child, seen)


@pytest.fixture
def values_unchecked(monkeypatch):
    """Meta tensors have no values: skip the finite-angle check, keep the cast."""
    monkeypatch.setattr(
        Program, "check_thetas", lambda self, thetas, batch_size: thetas.to(self.real_dtype())
    )


@pytest.mark.parametrize("gradient", ["autograd", "adjoint"])
def test_compiled_program_and_step_stay_on_the_state_device(values_unchecked, gradient):
    cell = random_cell(4, seed=3, n_gates=40)  # every kind of gate run and readout group
    program = qrnn.get_backend("torch.statevector", device="meta", gradient=gradient).prepare(cell)
    tables = list(_tensors(program))
    assert len(tables) > 10
    assert {t.device.type for t in tables} == {"meta"}
    assert torch.complex128 not in {t.dtype for t in tables}  # complex64 by default
    thetas = torch.zeros(3, cell.n_params, device="meta", requires_grad=True)
    with CPUTensorSpy() as spy:
        state, readouts = program.step(program.init_state(3), thetas)
        state, readouts = program.step(state, 2 * thetas)
        (readouts.sum() + state.abs().sum()).backward()
    assert spy.calls == []
    assert (state.device.type, state.dtype) == ("meta", torch.complex64)
    assert readouts.device.type == thetas.grad.device.type == "meta"


def test_the_trainer_puts_model_and_statevector_on_its_device(values_unchecked, tmp_path):
    config = _config(device="meta").override(
        model={"n_qubits": 3, "head_hidden": True, "backend_options": {"gradient": "adjoint"}}
    )
    trainer = Trainer(config, tmp_path / "run", progress=False)
    program = trainer.model.core.program
    assert program.device == torch.device("meta")
    assert {t.device.type for t in _tensors(program)} == {"meta"}
    assert {p.device.type for p in trainer.model.parameters()} == {"meta"}
    batch = next(iterate_batches(trainer.splits.train.tensors, 4))
    batch = tuple(t.to(trainer.device) for t in batch)
    with CPUTensorSpy() as spy:
        logits, targets = trainer.task.forward(trainer.train_model, batch)
        trainer.task.loss(logits, targets).backward()
    assert spy.calls == []
    assert {p.grad.device.type for p in trainer.model.parameters()} == {"meta"}


# -- 2-process gloo jobs started by torchrun ------------------------------------------------------

# One rank of a test job: the qrnn command line, recording the files this rank writes and its
# gradients before the first step; on rank $QRNN_TEST_FAIL_RANK it fails at the second step.
RANK_SCRIPT = """
import os
import sys
from pathlib import Path

import torch
from torch.optim.optimizer import register_optimizer_step_pre_hook

import qrnn.train
from qrnn.cli import main

RANK = int(os.environ["RANK"])
OUT = Path(os.environ["QRNN_TEST_OUT"])
WRITES = OUT / f"writes-{RANK}.txt"
WRITES.write_text("")
STEPS = []


def wrap(owner, name, path_of):
    original = getattr(owner, name)

    def recording(*args, **kwargs):
        with open(WRITES, "a") as file:
            file.write(Path(path_of(*args)).name + "\\n")
        return original(*args, **kwargs)

    setattr(owner, name, recording)


wrap(qrnn.train, "atomic_save", lambda obj, path: path)
wrap(qrnn.train.Trainer, "_log", lambda self, _: self.run_dir / qrnn.train.METRICS_FILE)
wrap(Path, "write_text", lambda self, *_: self)


def before_step(optimizer, args, kwargs):
    STEPS.append(len(STEPS))
    if len(STEPS) == 1:
        grads = [p.grad for group in optimizer.param_groups for p in group["params"]]
        torch.save(grads, OUT / f"grads-{RANK}.pt")
    if len(STEPS) == 2 and os.environ.get("QRNN_TEST_FAIL_RANK") == str(RANK):
        raise RuntimeError(f"rank {RANK} failed on purpose")


register_optimizer_step_pre_hook(before_step)
sys.exit(main(sys.argv[1:]))
"""


def _torchrun(args: list[str], workdir: Path, **env: str) -> tuple[int, str, float]:
    """Run a 2-process job on 127.0.0.1 (a free port) under a hard time limit.

    Returns:
        (exit code, the job's output, seconds it took).
    """
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", "2",
        "--rdzv-backend", "c10d", "--rdzv-endpoint", "127.0.0.1:0", "--max-restarts", "0", *args,
    ]  # fmt: skip
    environ = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "QRNN_DIST_TIMEOUT": "60",
        **env,
    }
    started = time.monotonic()
    job = subprocess.Popen(
        command,
        cwd=workdir,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, so a hung job can be killed whole
    )
    try:
        output, _ = job.communicate(timeout=JOB_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(job.pid, signal.SIGKILL)
        output, _ = job.communicate()
        pytest.fail(f"the job hung for {JOB_TIMEOUT_S} s:\n{output[-4000:]}")
    return job.returncode, output, time.monotonic() - started


def _metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / METRICS_FILE).read_text().splitlines()]


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / CHECKPOINT_FILE, weights_only=False)["model"]


def test_two_processes_take_the_step_of_one_process_on_the_whole_batch(tmp_path):
    script = tmp_path / "rank.py"
    script.write_text(RANK_SCRIPT)
    run = tmp_path / "run"
    argv = ["train", "copying", *TINY_FLAGS, "--epochs", "1", "--steps-per-epoch", "1"]
    code, output, _ = _torchrun(
        [str(script), *argv, "--run-dir", str(run)], tmp_path, QRNN_TEST_OUT=str(tmp_path)
    )
    assert code == 0, output

    # One process on the global batch of 8 that the two ranks split 4 + 4.
    first_grads = []
    hook = register_optimizer_step_pre_hook(
        lambda optimizer, args, kwargs: first_grads.append(
            [p.grad.clone() for group in optimizer.param_groups for p in group["params"]]
        )
    )
    try:
        config = RunConfig.from_dict(json.loads((run / "config.json").read_text()))
        single = Trainer(config, tmp_path / "single", progress=False)
        (single_record,) = single.fit()
    finally:
        hook.remove()
    for rank in range(2):  # DDP averaged the shards' gradients into the whole batch's
        grads = torch.load(tmp_path / f"grads-{rank}.pt")
        for got, want in zip(grads, first_grads[0], strict=True):
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)
    weights = _weights(run)
    for name, want in single.model.state_dict().items():
        torch.testing.assert_close(weights[name], want, rtol=1e-5, atol=1e-6)
    (record,) = _metrics(run)
    assert (record["step"], record["processes"]) == (1, 2)
    assert record["train_loss"] == pytest.approx(single_record["train_loss"], rel=1e-5)

    # Only rank 0 wrote the run directory.
    assert (tmp_path / "writes-1.txt").read_text() == ""
    written = (tmp_path / "writes-0.txt").read_text().split()
    assert sorted(written) == ["best.pt", "checkpoint.pt", "config.json", "metrics.jsonl"]


def test_resume_moves_between_one_and_two_processes(tmp_path, monkeypatch):
    reference = Trainer(_config(), tmp_path / "reference", progress=False)
    reference_records = reference.fit()

    # Every session below stops after the first epoch it completes.
    first = Trainer(_config(time_limit=1e-9), tmp_path / "run", progress=False)
    original_loss, calls = first.task.loss, []

    def interrupting_loss(*args):
        calls.append(None)
        if len(calls) == 2:  # the second batch of epoch 1
            raise KeyboardInterrupt
        return original_loss(*args)

    monkeypatch.setattr(first.task, "loss", interrupting_loss)
    with pytest.raises(KeyboardInterrupt):
        first.fit()

    # Two processes finish epoch 1 from a one-process checkpoint ...
    resume = ["-m", "qrnn", "train", "--resume", str(tmp_path / "run")]
    code, output, _ = _torchrun(resume, tmp_path)
    assert code == 0, output
    assert output.count("at epoch 1, batch 1") == 1  # resumed mid-epoch; only rank 0 speaks

    # ... and one process trains epoch 2 from theirs.
    last = Trainer.resume(tmp_path / "run", progress=False)
    assert (last.epoch, last.batch_in_epoch, last.step) == (1, 0, 3)
    last.fit()
    records = _metrics(tmp_path / "run")
    assert [r["processes"] for r in records] == [2, 1]
    for got, want in zip(records, reference_records, strict=True):
        for key in ("epoch", "step", "train_loss", "valid_loss", "valid_accuracy"):
            assert got[key] == pytest.approx(want[key], rel=1e-5, abs=1e-6), key
    weights = _weights(tmp_path / "run")
    for name, want in reference.model.state_dict().items():
        torch.testing.assert_close(weights[name], want, rtol=1e-5, atol=1e-6)


def test_a_failing_rank_stops_the_job_with_its_error(tmp_path):
    script = tmp_path / "rank.py"
    script.write_text(RANK_SCRIPT)
    argv = ["train", "copying", *TINY_FLAGS, "--epochs", "1", "--run-dir", str(tmp_path / "run")]
    code, output, seconds = _torchrun(
        [str(script), *argv], tmp_path, QRNN_TEST_OUT=str(tmp_path), QRNN_TEST_FAIL_RANK="1"
    )
    assert code != 0
    assert "RuntimeError: rank 1 failed on purpose" in output
    assert seconds < 60  # torchrun stopped rank 0; it did not wait out the 60 s collective timeout
    assert not (tmp_path / "run" / METRICS_FILE).exists()  # no epoch finished
