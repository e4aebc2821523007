"""Training: run configuration, the Trainer loop, evaluation, atomic checkpoints and resume.

A run directory holds ``config.json`` (the resolved configuration), ``metrics.jsonl`` (one JSON
object per epoch), ``checkpoint.pt`` (everything needed to continue exactly: weights, optimizer,
scheduler, RNG states, position in the epoch) and ``best.pt`` (the weights with the best
validation metric). Checkpoints are written to a temporary file and renamed, so an interruption
never leaves a half-written one. Ctrl-C saves a checkpoint and stops cleanly; ``resume`` picks up
at the same batch.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import tomllib
import torch

from qrnn import distributed
from qrnn.errors import QRNNError
from qrnn.model import ModelConfig, parameter_report
from qrnn.tasks import get_task
from qrnn.tasks.base import iterate_batches

logger = logging.getLogger(__name__)

SCHEDULES = ("constant", "cosine")
PRESET_DIR = Path(__file__).parent / "configs"  # TOML presets, one per task
CONFIG_FILE, METRICS_FILE, CHECKPOINT_FILE, BEST_FILE = (
    "config.json",
    "metrics.jsonl",
    "checkpoint.pt",
    "best.pt",
)


@attrs.frozen
class TrainConfig:
    """Optimisation settings (AdamW with gradient-norm clipping, as in the paper's setup)."""

    epochs: int = 10  # passes over the training split
    batch_size: int = 64  # B
    lr: float = 3e-3  # peak learning rate
    weight_decay: float = 0.0  # AdamW decoupled weight decay
    clip_norm: float = 1.0  # max gradient norm (0 disables clipping)
    schedule: str = attrs.field(default="cosine")  # constant | cosine (with linear warm-up)
    warmup_steps: int = 0  # linear warm-up steps before the schedule
    patience: int | None = None  # early stopping: epochs without improvement; None disables
    seed: int = 0  # weights, data order and dropout
    device: str = "cpu"  # of the model and the statevector; cuda: cuda:LOCAL_RANK under torchrun
    eval_batch_size: int = 256
    steps_per_epoch: int | None = None  # cap on batches per epoch, for quick runs
    time_limit: float | None = None  # seconds of training before stopping after an epoch

    @schedule.validator
    def _check_schedule(self, _attribute, value) -> None:
        if value not in SCHEDULES:
            raise QRNNError(f"'schedule' must be one of {SCHEDULES} (got {value!r})")


@attrs.frozen
class RunConfig:
    """Everything that defines a run: the task, the model and the optimisation."""

    task: str
    task_options: dict[str, Any] = attrs.field(factory=dict, converter=dict)
    model: ModelConfig = attrs.field(factory=ModelConfig)
    train: TrainConfig = attrs.field(factory=TrainConfig)

    def to_dict(self) -> dict:
        return attrs.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> RunConfig:
        """Build from nested dicts; unknown keys raise an error that names them."""
        data = dict(data)
        unknown = data.keys() - {"task", "task_options", "model", "train"}
        if unknown:
            raise QRNNError(f"unknown config section(s) {sorted(unknown)}")
        if "task" not in data:
            raise QRNNError('the config names no task (set task = "copying", ...)')
        return cls(
            task=data["task"],
            task_options=data.get("task_options", {}),
            model=_from_fields(ModelConfig, data.get("model", {}), "model"),
            train=_from_fields(TrainConfig, data.get("train", {}), "train"),
        )

    def override(
        self, task_options: dict | None = None, model: dict | None = None, train: dict | None = None
    ) -> RunConfig:
        """A copy with some fields replaced (flags over presets)."""
        return attrs.evolve(
            self,
            task_options={**self.task_options, **(task_options or {})},
            model=_from_fields(ModelConfig, {**attrs.asdict(self.model), **(model or {})}, "model"),
            train=_from_fields(TrainConfig, {**attrs.asdict(self.train), **(train or {})}, "train"),
        )


def _from_fields(cls, values: dict, section: str):
    names = {f.name for f in attrs.fields(cls)}
    unknown = values.keys() - names
    if unknown:
        raise QRNNError(
            f"Unknown config key(s) in [{section}]: {sorted(unknown)} (known: {sorted(names)})"
        )
    return cls(**values)


def load_preset(path: str | Path) -> RunConfig:
    """Read a TOML preset: a top-level ``task`` and tables ``[task_options]``, ``[model]``,
    ``[train]``."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise QRNNError(f"preset file {str(path)!r} does not exist") from None
    except tomllib.TOMLDecodeError as error:
        raise QRNNError(f"preset {str(path)!r} is not valid TOML: {error}") from None
    return RunConfig.from_dict(data)


# -- helpers ------------------------------------------------------------------------------------


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def atomic_save(obj: Any, path: Path) -> None:
    """torch.save to a temporary file, then rename over ``path`` (never half-written)."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The shuffled sample order of one epoch: a function of (seed, epoch) only, so a resumed
    run sees the same batches."""
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(n, generator=generator)


def _lr_lambda(config: TrainConfig, total_steps: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        if config.schedule == "constant":
            return 1.0
        progress = (step - config.warmup_steps) / max(1, total_steps - config.warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


# -- the trainer --------------------------------------------------------------------------------


class Trainer:
    """Trains one model on one task and keeps its run directory up to date.

    Args:
        config: the run's configuration.
        run_dir: where config, metrics and checkpoints go (created if missing).
        progress: show a progress bar on stderr.
    """

    def __init__(self, config: RunConfig, run_dir: str | Path, progress: bool = True) -> None:
        self.config = config
        self.run_dir = Path(run_dir)
        self.progress = progress
        train = config.train
        seed_everything(train.seed)
        # Under torchrun this process is one rank of a data-parallel job (qrnn.distributed).
        self.world, self.device = distributed.setup(train.device)
        self.local_batch_size = self.world.local_batch_size(train.batch_size)
        self.task = get_task(config.task, seed=train.seed, **config.task_options)
        self.task.bind_run(self.run_dir, batch_size=train.batch_size)
        with self.world.main_first():  # rank 0 fetches or unpacks data before the others read
            self.splits = self.task.splits()
        model_config = config.model
        if self.device.type != "cpu" and model_config.model == "qrnn":
            # The statevector lives with the parameters: this process's device wins.
            model_config = attrs.evolve(
                model_config,
                backend_options={**model_config.backend_options, "device": str(self.device)},
            )
        self.model = self.task.build_model(model_config).to(self.device)
        # Training batches go through DistributedDataParallel in a data-parallel job.
        self.train_model = self.world.wrap(self.model, self.device)
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=train.lr, weight_decay=train.weight_decay
        )
        n_batches = math.ceil(len(self.splits.train) / train.batch_size)
        self.steps_per_epoch = min(n_batches, train.steps_per_epoch or n_batches)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, _lr_lambda(train, self.steps_per_epoch * train.epochs)
        )
        self.epoch = 0  # epochs completed
        self.batch_in_epoch = 0  # batches of the current epoch already trained
        self.step = 0  # optimizer steps in total
        self.best: float | None = None
        self.stale_epochs = 0
        self.elapsed = 0.0  # training seconds over all sessions of this run
        self.epoch_losses: list[float] = []  # training losses of the current epoch's batches
        # RNG state at the start of the current batch: an interrupted batch reruns identically.
        self._rng = self._rng_state()

    # -- persistence ----------------------------------------------------------------------------

    def _state(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "epoch_losses": self.epoch_losses,
            "step": self.step,
            "best": self.best,
            "stale_epochs": self.stale_epochs,
            "elapsed": self.elapsed,
            "rng": self._rng,
        }

    @staticmethod
    def _rng_state() -> dict:
        return {
            "torch": torch.get_rng_state(),
            "numpy": np.random.get_state(),
            "python": random.getstate(),
        }

    def save_checkpoint(self) -> None:
        atomic_save(self._state(), self.run_dir / CHECKPOINT_FILE)

    def load_checkpoint(self) -> None:
        state = torch.load(
            self.run_dir / CHECKPOINT_FILE, map_location=self.device, weights_only=False
        )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        for key in (
            "epoch",
            "batch_in_epoch",
            "epoch_losses",
            "step",
            "best",
            "stale_epochs",
            "elapsed",
        ):
            setattr(self, key, state[key])
        self._rng = state["rng"]
        torch.set_rng_state(state["rng"]["torch"])
        np.random.set_state(state["rng"]["numpy"])
        random.setstate(state["rng"]["python"])

    @classmethod
    def resume(
        cls, run_dir: str | Path, progress: bool = True, device: str | None = None
    ) -> Trainer:
        """Rebuild a trainer from a run directory and continue where it stopped.

        Args:
            run_dir: a run directory with a checkpoint.
            progress: show a progress bar.
            device: train on this device instead of the run's (e.g. a GPU run resumed on CPU).
        """
        config = read_run_config(run_dir, need_checkpoint=True)
        if device is not None:
            config = config.override(train={"device": device})
        trainer = cls(config, run_dir, progress=progress)
        trainer.load_checkpoint()
        return trainer

    def _log(self, record: dict) -> None:
        with open(self.run_dir / METRICS_FILE, "a") as file:
            file.write(json.dumps(record) + "\n")

    # -- the loop -------------------------------------------------------------------------------

    def _train_epoch(self) -> float:
        """Train the rest of the current epoch; returns the mean training loss of its batches."""
        train = self.config.train
        n_train = len(self.splits.train)
        if self.task.shuffle:
            order = epoch_order(n_train, train.seed, self.epoch)
        else:  # e.g. language modelling, whose batches continue each other
            order = torch.arange(n_train)
        order = order[: self.steps_per_epoch * train.batch_size]
        # This rank's B / W samples of every global batch (all of them in one process).
        shard = self.world.shard(order)
        all_batches = list(iterate_batches(self.splits.train.tensors, self.local_batch_size, shard))
        bar = None
        if self.progress and self.world.is_main:
            from tqdm import tqdm

            bar = tqdm(
                total=self.steps_per_epoch,
                initial=self.batch_in_epoch,
                leave=False,
                disable=None,
                desc=f"epoch {self.epoch + 1}/{train.epochs}",
                unit="step",
            )
        self.train_model.train()
        try:
            for batch in all_batches[self.batch_in_epoch :]:
                if self.world.distributed:  # own dropout masks per rank, the same on resume
                    seed_everything(self.world.batch_seed(train.seed, self.step))
                self._rng = self._rng_state()
                started = time.perf_counter()
                batch = tuple(t.to(self.device) for t in batch)
                logits, targets = self.task.forward(self.train_model, batch)
                loss = self.task.loss(logits, targets)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()  # DDP averages the ranks' gradients here
                if train.clip_norm:
                    torch.nn.utils.clip_grad_norm_(self.model.parameters(), train.clip_norm)
                self.optimizer.step()
                self.scheduler.step()
                batch_loss = self.world.mean(loss)  # the global batch's; waits for the device
                self.step += 1
                self.batch_in_epoch += 1
                self.elapsed += time.perf_counter() - started
                self.epoch_losses.append(batch_loss)
                if bar is not None:
                    bar.set_postfix(loss=f"{batch_loss:.4f}")
                    bar.update()
        finally:
            if bar is not None:
                bar.close()
        self._rng = self._rng_state()
        return float(np.mean(self.epoch_losses))

    def fit(self, on_epoch: Callable[[dict], None] | None = None) -> list[dict]:
        """Train until the configured epochs, early stopping or the time limit; return the
        metrics of the epochs trained in this call, each also passed to ``on_epoch`` as soon as
        it is logged. Ctrl-C saves a checkpoint and re-raises.

        In a data-parallel job every rank calls it and gets the same records; rank 0 evaluates
        and writes the run directory.
        """
        train = self.config.train
        main = self.world.is_main
        if main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / CONFIG_FILE).write_text(json.dumps(self.config.to_dict(), indent=2))
        primary = self.task.primary_metric
        records = []
        while self.epoch < train.epochs:
            try:
                train_loss = self._train_epoch()
            except KeyboardInterrupt:
                if main:  # its state after its last step is every rank's (no collective here)
                    self.save_checkpoint()
                    logger.warning(
                        "interrupted: checkpoint saved in %s (epoch %d, batch %d)",
                        self.run_dir,
                        self.epoch + 1,
                        self.batch_in_epoch,
                    )
                raise
            valid = None
            if main:
                valid = self.task.evaluate(
                    self.model, self.splits.valid, train.eval_batch_size, self.device
                )
            # Every rank decides from rank 0's numbers, so all stop at the same epoch.
            valid, self.elapsed = self.world.broadcast((valid, self.elapsed))
            self.epoch += 1
            self.batch_in_epoch = 0
            self.epoch_losses = []
            score = valid[primary]
            improved = self.best is None or (
                score > self.best if self.task.higher_is_better else score < self.best
            )
            if improved:
                self.best, self.stale_epochs = score, 0
                if main:
                    atomic_save(self.model.state_dict(), self.run_dir / BEST_FILE)
            else:
                self.stale_epochs += 1
            record = {
                "epoch": self.epoch,
                "step": self.step,
                "train_loss": train_loss,
                **{f"valid_{k}": v for k, v in valid.items()},
                "lr": self.scheduler.get_last_lr()[0],
                "elapsed_s": round(self.elapsed, 3),
                "steps_per_s": round(self.step / max(self.elapsed, 1e-9), 3),
                "processes": self.world.size,
            }
            records.append(record)
            if on_epoch is not None:
                on_epoch(record)
            if main:
                self._log(record)
                self.save_checkpoint()
                logger.info("epoch %d: %s", self.epoch, record)
            if train.patience is not None and self.stale_epochs >= train.patience:
                logger.info("early stopping: no improvement for %d epochs", train.patience)
                break
            if train.time_limit is not None and self.elapsed >= train.time_limit:
                logger.info("time limit of %.0f s reached", train.time_limit)
                break
        self.world.barrier()  # rank 0's files are complete before any rank reads them
        return records

    def test_metrics(self, split: str = "test", weights: str = BEST_FILE) -> dict[str, float]:
        """Metrics on a split with the best (or last) weights."""
        path = self.run_dir / weights
        if path.exists():
            self.model.load_state_dict(torch.load(path, map_location=self.device))
        return self.task.evaluate(
            self.model,
            getattr(self.splits, split),
            self.config.train.eval_batch_size,
            self.device,
        )

    def summary(self) -> dict[str, Any]:
        return {
            "task": self.task.describe(),
            "parameters": parameter_report(self.model),
            "reference": self.task.reference(),
        }


def read_run_config(run_dir: str | Path, need_checkpoint: bool = False) -> RunConfig:
    """The configuration saved in a run directory."""
    run_dir = Path(run_dir)
    needed = [CONFIG_FILE, CHECKPOINT_FILE] if need_checkpoint else [CONFIG_FILE]
    missing = [name for name in needed if not (run_dir / name).exists()]
    if missing:
        raise QRNNError(
            f"{str(run_dir)!r} is not a run directory{' with a checkpoint' * need_checkpoint} "
            f"(missing {', '.join(missing)})"
        )
    return RunConfig.from_dict(json.loads((run_dir / CONFIG_FILE).read_text()))


def load_run(
    run_dir: str | Path,
    backend: str | None = None,
    backend_options: dict | None = None,
    device: str | None = None,
) -> Trainer:
    """A trainer for a finished run, optionally on another backend or device.

    A QRNN evaluated on a backend that cannot run on the run's device (a GPU run evaluated on
    ``numpy.statevector``) is evaluated on the CPU unless ``device`` says otherwise.
    """
    config = read_run_config(run_dir)
    if backend is not None or backend_options:
        if config.model.model != "qrnn":
            raise QRNNError(
                f"a backend choice applies to QRNN runs; this run trained a "
                f"{config.model.model!r} model"
            )
        backend = backend or config.model.backend
        config = config.override(
            model={"backend": backend, "backend_options": backend_options or {}}
        )
        if device is None:
            from qrnn.registry import REGISTRY, list_backends

            list_backends()  # loads the plugins
            devices = REGISTRY.lookup(backend).capabilities.devices
            if torch.device(config.train.device).type not in devices:
                logger.info("backend %r runs on %s: evaluating on cpu", backend, sorted(devices))
                device = "cpu"
    if device is not None:
        config = config.override(train={"device": device})
    return Trainer(config, run_dir, progress=False)
