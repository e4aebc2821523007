"""Data-parallel training with ``torch.distributed``: one process per CPU slot or GPU, started by
``torchrun`` (``torchrun --nproc-per-node W -m qrnn train ...``; see docs/scale-out.md).

``torchrun`` gives every process ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``,
``MASTER_ADDR`` and ``MASTER_PORT``. :func:`setup` reads them, picks the process's device
(``cuda`` means ``cuda:LOCAL_RANK``) and joins the process group: gloo on CPU, NCCL on GPUs.
Without them the trainer is one ordinary process and nothing here talks to another.

What keeps a run of W processes equivalent to one process:

- ``batch_size`` is the global batch B. Every process takes B / W samples of each global batch
  (:meth:`World.shard`, a ``DistributedSampler`` over the epoch's order) and
  ``DistributedDataParallel`` averages the gradients, so a step is the step one process takes on
  the whole batch (exactly so when the loss is a mean over samples: the shards are equal).
  Steps, the learning-rate schedule and the position in an epoch count global batches, so a
  checkpoint resumes with any number of processes.
- Weights start identical: every rank seeds the same, and DDP broadcasts rank 0's anyway. Each
  rank draws its own random numbers (dropout) from a seed of (seed, rank, step)
  (:meth:`World.batch_seed`).
- Rank 0 evaluates and writes the run directory; the numbers the decisions rest on
  (validation metrics, elapsed time) are broadcast from it, so all ranks stop together and none
  waits in a collective the others skipped.
- A collective that waits longer than ``QRNN_DIST_TIMEOUT`` seconds (default 1800) fails, and
  ``torchrun`` stops every process of the job when one exits with an error.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import logging
import os
from collections.abc import Iterator, Mapping
from typing import TypeVar

import attrs
import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data.distributed import DistributedSampler

from qrnn.errors import QRNNError

logger = logging.getLogger(__name__)

TIMEOUT_ENV = "QRNN_DIST_TIMEOUT"
DEFAULT_TIMEOUT_S = 1800.0
_T = TypeVar("_T")


@attrs.frozen
class World:
    """This process's place in a data-parallel job; the defaults are a job of one process.

    Attributes:
        rank: global rank, 0 .. size - 1.
        size: number of processes W.
        local_rank: rank among the processes on this node (the GPU it takes).
        local_size: processes on this node.
    """

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1

    @property
    def distributed(self) -> bool:
        """Whether other processes take part (W > 1)."""
        return self.size > 1

    @property
    def is_main(self) -> bool:
        """Whether this process writes the run's files and makes its decisions (rank 0)."""
        return self.rank == 0

    def local_batch_size(self, batch_size: int) -> int:
        """B / W: this rank's share of a global batch of B.

        Raises:
            QRNNError: B is not a multiple of W (unequal shards would weigh samples unequally).
        """
        if batch_size % self.size:
            raise QRNNError(
                f"batch_size is the global batch and must be a multiple of the {self.size} "
                f"processes (got {batch_size})"
            )
        return batch_size // self.size

    def shard(self, order: torch.Tensor) -> torch.Tensor:
        """This rank's samples of an epoch's order: every W-th one from position ``rank`` on,
        padded with the first samples to the same length on every rank.

        Cut into batches of B / W, the k-th batches of the W shards make up exactly the k-th
        batch of B of ``order`` (the last one padded), so every rank takes the same number of
        steps and the union of a step's shards is the batch one process would take.

        Args:
            order: (N,) sample indices in the epoch's order.

        Returns:
            (ceil(N / W),) indices; ``order`` itself in a job of one process.
        """
        if not self.distributed:
            return order
        sampler = DistributedSampler(
            range(len(order)), num_replicas=self.size, rank=self.rank, shuffle=False
        )
        return order[torch.as_tensor(list(sampler), dtype=torch.long)]

    def batch_seed(self, seed: int, step: int) -> int:
        """The seed of this rank's random numbers for one training step of a run seeded
        ``seed``: its own stream per rank, the same again when the step is resumed."""
        return int(np.random.SeedSequence([seed, self.rank, step]).generate_state(1)[0])

    def broadcast(self, value: _T) -> _T:
        """Rank 0's ``value`` (any picklable object) on every rank."""
        if not self.distributed:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def mean(self, value: torch.Tensor) -> float:
        """The mean over ranks of a scalar tensor, e.g. the global batch's loss from each
        shard's mean loss. Waits for the device, so it also ends a step's timing."""
        if self.distributed:
            value = value.detach().clone()
            dist.all_reduce(value)  # sum; ReduceOp.AVG exists on NCCL only
            value /= self.size
        return value.item()

    def barrier(self) -> None:
        """Wait until every rank gets here."""
        if not self.distributed:
            return
        if dist.get_backend() == "nccl":  # name the GPU, or NCCL guesses and warns
            dist.barrier(device_ids=[torch.cuda.current_device()])
        else:
            dist.barrier()

    @contextlib.contextmanager
    def main_first(self) -> Iterator[None]:
        """Run the body on rank 0, then on the others: rank 0 downloads or unpacks data into a
        shared directory before the others read it."""
        if not self.is_main:
            self.barrier()
        yield
        if self.is_main:
            self.barrier()

    def wrap(self, model: nn.Module, device: torch.device) -> nn.Module:
        """``model`` under ``DistributedDataParallel`` in a job of several processes, else
        ``model`` itself. The wrapper shares the parameters; train through it, save ``model``."""
        if not self.distributed:
            return model
        device_ids = [device.index] if device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=device_ids)


def _env_int(environ: Mapping[str, str], name: str, default: int) -> int:
    value = environ.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise QRNNError(f"environment variable {name} must be an integer (got {value!r})") from None


def world_from_env(environ: Mapping[str, str] | None = None) -> World:
    """The world a process belongs to: the process group already joined, else torchrun's
    variables, else a job of one process."""
    environ = os.environ if environ is None else environ
    if dist.is_available() and dist.is_initialized():
        size = dist.get_world_size()
        return World(
            rank=dist.get_rank(),
            size=size,
            local_rank=_env_int(environ, "LOCAL_RANK", 0),
            local_size=_env_int(environ, "LOCAL_WORLD_SIZE", size),
        )
    size = _env_int(environ, "WORLD_SIZE", 1)
    rank = _env_int(environ, "RANK", 0)
    world = World(
        rank=rank,
        size=size,
        local_rank=_env_int(environ, "LOCAL_RANK", rank),
        local_size=_env_int(environ, "LOCAL_WORLD_SIZE", size),
    )
    if not (0 <= world.rank < world.size and 0 <= world.local_rank < world.local_size):
        raise QRNNError(
            f"inconsistent torchrun environment: RANK={world.rank} of WORLD_SIZE={world.size}, "
            f"LOCAL_RANK={world.local_rank} of LOCAL_WORLD_SIZE={world.local_size}"
        )
    return world


def resolve_device(requested: str | torch.device, world: World) -> torch.device:
    """The torch device this process trains on.

    In a job of several processes plain ``cuda`` becomes ``cuda:LOCAL_RANK``, one GPU per
    process. Nothing falls back to the CPU: a device that cannot be had is an error.

    Raises:
        QRNNError: not a torch device; CUDA requested but absent; a CUDA index beyond the devices
            torch sees; an explicit ``cuda:N`` shared by several processes on a node; or a
            data-parallel job on a device other than ``cpu`` and ``cuda``.
    """
    try:
        device = torch.device(requested)
    except (RuntimeError, TypeError):
        raise QRNNError(f"device must be cpu, cuda or cuda:N (got {requested!r})") from None
    if world.distributed and device.type not in ("cpu", "cuda"):
        raise QRNNError(
            f"data-parallel training runs on cpu (gloo) or cuda (NCCL), not {device.type!r}"
        )
    if device.type != "cuda":
        return device
    if not torch.cuda.is_available():
        raise QRNNError(f"device {str(device)!r} requested but torch sees no CUDA device")
    if world.distributed:
        if device.index is None:
            device = torch.device("cuda", world.local_rank)
        elif world.local_size > 1:
            raise QRNNError(
                f"with {world.local_size} processes on a node each takes cuda:LOCAL_RANK: pass "
                f"device cuda, not {str(device)!r} (choose GPUs with CUDA_VISIBLE_DEVICES)"
            )
    count = torch.cuda.device_count()
    if device.index is not None and device.index >= count:
        raise QRNNError(
            f"device {str(device)!r} requested but torch sees {count} CUDA device(s) "
            f"(cuda:0 .. cuda:{count - 1})"
        )
    return device


def collective_timeout() -> datetime.timedelta:
    """How long a collective may wait for the other ranks: ``$QRNN_DIST_TIMEOUT`` seconds."""
    value = os.environ.get(TIMEOUT_ENV)
    try:
        seconds = DEFAULT_TIMEOUT_S if value is None else float(value)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise QRNNError(f"{TIMEOUT_ENV} must be a positive number of seconds (got {value!r})")
    return datetime.timedelta(seconds=seconds)


def _shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def setup(requested_device: str | torch.device) -> tuple[World, torch.device]:
    """Find this process's world and device, and join the process group if there are others.

    Args:
        requested_device: the run's ``train.device`` (``cpu``, ``cuda``, ``cuda:N``).

    Returns:
        (world, device). The group (gloo for cpu, NCCL for cuda) is left at exit.
    """
    world = world_from_env()
    device = resolve_device(requested_device, world)
    if world.distributed and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)  # NCCL's collectives run on the current device
        try:
            dist.init_process_group(
                backend, rank=world.rank, world_size=world.size, timeout=collective_timeout()
            )
        except ValueError as error:  # e.g. MASTER_ADDR unset outside torchrun
            raise QRNNError(
                f"cannot join a job of {world.size} processes ({error}); start it with torchrun"
            ) from None
        atexit.register(_shutdown)
        logger.info("rank %d of %d on %s (%s)", world.rank, world.size, device, backend)
    return world, device
