"""The task contract: data splits, loss, metrics and reference numbers of one learning problem.

A :class:`Task` owns its data (generated or read from disk, built lazily on the first
:meth:`Task.splits` call and cached) and says how to score a model's logits against its targets.
Concrete tasks register themselves by ``name`` in :data:`TASKS`; :func:`get_task` builds one by
name. The helpers here (option checks, seeded generators, stratified ordering, cross-entropy and
accuracy) keep the task modules short.
"""

from __future__ import annotations

import abc
import inspect
import os
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import attrs
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from qrnn.errors import QRNNError
from qrnn.model import ModelConfig, build_model

TARGET_KINDS = ("sequence", "step")
INPUT_KINDS = ("tokens", "real")

TASKS: dict[str, type[Task]] = {}


@attrs.frozen
class Splits:
    """The train, validation and test sets of a task, each a ``TensorDataset(inputs, targets)``."""

    train: TensorDataset
    valid: TensorDataset
    test: TensorDataset

    def sizes(self) -> tuple[int, int, int]:
        """Number of samples in (train, valid, test)."""
        return len(self.train), len(self.valid), len(self.test)


def sizes_text(n_train: int, n_valid: int, n_test: int) -> str:
    """Split sizes as ``train/valid/test 1257/270/270``, for :meth:`Task.describe`."""
    return f"train/valid/test {n_train}/{n_valid}/{n_test}"


def iterate_batches(
    tensors: tuple[torch.Tensor, ...], batch_size: int, order: torch.Tensor | None = None
) -> Iterator[tuple[torch.Tensor, ...]]:
    """Slices of ``tensors`` of ``batch_size`` samples each, in ``order`` (default: as stored)."""
    order = order if order is not None else torch.arange(len(tensors[0]))
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        yield tuple(t[index] for t in tensors)


class Task(abc.ABC):
    """Base class of every task.

    Subclasses set the class attributes below, set ``n_inputs``, ``n_outputs`` and ``seq_len`` in
    ``__init__`` (after validating their options, which they pass on to ``super().__init__`` so
    :meth:`options` can report them), and implement :meth:`build_splits`, :meth:`loss`,
    :meth:`metrics` and :meth:`describe`.

    Attributes:
        name: the registry name, e.g. ``"copying"``.
        target: ``"sequence"`` (one target per sequence, logits (B, C)) or ``"step"`` (one target
            per timestep, logits (B, T, C)).
        input_kind: ``"tokens"`` (inputs LongTensor (N, T)) or ``"real"`` (FloatTensor (N, T, F)).
        primary_metric: the key of :meth:`metrics` used for early stopping and model selection.
        higher_is_better: whether a larger ``primary_metric`` is better.
        n_inputs: vocabulary size V (tokens) or features per step F (real).
        n_outputs: classes C (1 for regression).
        seq_len: sequence length T.

    Args:
        seed: non-negative int that fixes the generated data or the split of a fixed data set.
        **options: the task's resolved options (JSON-serialisable), reported by :meth:`options`.
    """

    name: ClassVar[str]
    target: ClassVar[str]
    input_kind: ClassVar[str]
    primary_metric: ClassVar[str]
    higher_is_better: ClassVar[bool]
    shuffle: ClassVar[bool] = True  # whether training batches are reshuffled every epoch
    n_inputs: int
    n_outputs: int
    seq_len: int

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if inspect.isabstract(cls):
            return
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not name:
            raise TypeError(f"task class {cls.__qualname__} must set 'name' (got {name!r})")
        if getattr(cls, "target", None) not in TARGET_KINDS:
            raise TypeError(f"task {name!r}: 'target' must be one of {TARGET_KINDS}")
        if getattr(cls, "input_kind", None) not in INPUT_KINDS:
            raise TypeError(f"task {name!r}: 'input_kind' must be one of {INPUT_KINDS}")
        if name in TASKS and TASKS[name] is not cls:
            raise TypeError(
                f"task name {name!r} is taken by {TASKS[name].__qualname__}; "
                f"{cls.__qualname__} needs another name"
            )
        TASKS[name] = cls

    def __init__(self, *, seed: int = 0, **options: Any) -> None:
        self.seed = check_int("seed", seed, minimum=0)
        self._options = {"seed": self.seed, **options}
        self._splits: Splits | None = None

    def splits(self) -> Splits:
        """The train/valid/test data sets, built on the first call and cached."""
        if self._splits is None:
            self._splits = self.build_splits()
        return self._splits

    def options(self) -> dict[str, Any]:
        """The resolved options (JSON-serialisable), enough to rebuild the task with get_task."""
        return dict(self._options)

    def reference(self) -> dict[str, float]:
        """Reference numbers to compare a model with (e.g. a memoryless baseline); {} if none."""
        return {}

    @abc.abstractmethod
    def build_splits(self) -> Splits:
        """Generate or load the data; called once by :meth:`splits`."""

    @abc.abstractmethod
    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The scalar training loss, a mean over the batch (and over steps for step targets)."""

    @abc.abstractmethod
    def metrics(self, logits: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        """Evaluation metrics as floats; always includes ``"loss"`` and ``primary_metric``."""

    @abc.abstractmethod
    def describe(self) -> str:
        """One line naming the data actually used: its source and the split sizes."""

    def bind_run(self, run_dir: str | Path, *, batch_size: int) -> None:
        """Called by the trainer once, before :meth:`splits`, with the run directory and the
        training batch size. The default does nothing; text tasks keep their vocabulary in the
        run directory, and language modelling lays its streams out for the batch size."""

    def build_model(self, config: ModelConfig) -> nn.Module:
        """The model ``config`` describes, shaped for this task; the trainer trains this.

        The default is :func:`qrnn.model.build_model`'s embedding -> core -> head; tasks with
        another architecture (the attention seq2seq) override it.
        """
        return build_model(
            config,
            input_kind=self.input_kind,
            n_inputs=self.n_inputs,
            n_outputs=self.n_outputs,
            target=self.target,
        )

    def forward(self, model: nn.Module, batch: tuple[torch.Tensor, ...]):
        """Run ``model`` on one batch of a split; returns ``(logits, targets)`` for :meth:`loss`.

        The default reads batches of ``(inputs, targets)``; tasks with other batch layouts
        (masks, source and target sequences) override it.
        """
        inputs, targets = batch
        return model(inputs), targets

    @torch.no_grad()
    def evaluate(
        self,
        model: nn.Module,
        dataset: TensorDataset,
        batch_size: int = 256,
        device: torch.device | str = "cpu",
    ) -> dict[str, float]:
        """:meth:`metrics` of ``model`` on a whole split, with the logits of all batches
        gathered first (so metrics are exact, not averages of batch averages)."""
        model.eval()
        logits, targets = [], []
        for batch in iterate_batches(dataset.tensors, batch_size):
            batch_logits, batch_targets = self.forward(model, tuple(t.to(device) for t in batch))
            logits.append(batch_logits.cpu())
            targets.append(batch_targets.cpu())
        return self.metrics(torch.cat(logits), torch.cat(targets))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._options.items())
        return f"{type(self).__name__}({args})"


class GeneratedTask(Task):
    """A task whose data is synthesised: ``n`` samples per split from a seeded generator.

    Subclasses implement :meth:`generate`; each split draws from its own stream of ``seed``.

    Args:
        n_train: training samples.
        n_valid: validation samples.
        n_test: test samples.
        seed: fixes the generated data.
        **options: the subclass's own resolved options.
    """

    def __init__(
        self, *, n_train: int, n_valid: int, n_test: int, seed: int = 0, **options: Any
    ) -> None:
        self.sizes = {
            "train": check_int("n_train", n_train, minimum=1),
            "valid": check_int("n_valid", n_valid, minimum=1),
            "test": check_int("n_test", n_test, minimum=1),
        }
        super().__init__(seed=seed, **options, n_train=n_train, n_valid=n_valid, n_test=n_test)

    @abc.abstractmethod
    def generate(self, n: int, generator: torch.Generator) -> TensorDataset:
        """Draw ``n`` samples (inputs, targets) from ``generator``."""

    def build_splits(self) -> Splits:
        return Splits(
            **{
                split: self.generate(n, seeded_generator(self.seed, split))
                for split, n in self.sizes.items()
            }
        )


def get_task(name: str, **options: Any) -> Task:
    """Build the task registered under ``name`` with the given options.

    Raises:
        QRNNError: the name is unknown (the message lists the known names) or an option is not
            one the task accepts (the message lists those it does).
    """
    try:
        cls = TASKS[name]
    except KeyError:
        raise QRNNError(
            f"unknown task {name!r}; available tasks: {', '.join(sorted(TASKS))}"
        ) from None
    params = inspect.signature(cls.__init__).parameters
    accepted = [p for p in params.values() if p.kind is p.KEYWORD_ONLY]
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(options) - {p.name for p in accepted})
        if unknown:
            raise QRNNError(
                f"task {name!r} got unknown option(s) {', '.join(unknown)}; it accepts: "
                f"{', '.join(p.name for p in accepted)}"
            )
    return cls(**options)


# --- option checks ---------------------------------------------------------------------------


def check_int(name: str, value: Any, *, minimum: int | None = None) -> int:
    """Return ``value`` if it is an int (not a bool) >= ``minimum``, else raise a QRNNError."""
    if not isinstance(value, (int, np.integer)) or isinstance(value, (bool, np.bool_)):
        raise QRNNError(f"option {name!r} must be an int (got {value!r})")
    if minimum is not None and value < minimum:
        raise QRNNError(f"option {name!r} must be >= {minimum} (got {value!r})")
    return int(value)


def check_optional_int(name: str, value: Any, *, minimum: int | None = None) -> int | None:
    """Like :func:`check_int`, but ``None`` passes through."""
    return None if value is None else check_int(name, value, minimum=minimum)


def check_bool(name: str, value: Any) -> bool:
    """Return ``value`` if it is a bool, else raise a QRNNError."""
    if not isinstance(value, (bool, np.bool_)):
        raise QRNNError(f"option {name!r} must be True or False (got {value!r})")
    return bool(value)


def check_data_dir(value: Any) -> Path | None:
    """Return the ``data_dir`` option as an expanded path (None passes through), else raise."""
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise QRNNError(f"option 'data_dir' must be a path or None (got {value!r})")
    return Path(value).expanduser()


# --- randomness --------------------------------------------------------------------------------


def seeded_generator(seed: int, stream: str) -> torch.Generator:
    """A torch generator for one named random stream (``"train"``, ``"valid"``, ...) of a seed.

    Each stream gets its own well-mixed seed, so the validation and test sets stay the same when
    the training set size changes, and no two streams of one seed share random numbers.
    """
    mixed = np.random.SeedSequence([seed, zlib.crc32(stream.encode())]).generate_state(1)[0]
    return torch.Generator().manual_seed(int(mixed))


def stratified_order(labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A random order of the samples in which every prefix holds the classes in proportion.

    Samples are shuffled, ranked within their class, and sorted by (rank + 1/2) / class size, so
    the first m indices contain about m * n_c / N samples of class c (within one).

    Args:
        labels: (N,) integer class labels.
        generator: the source of the shuffle.

    Returns:
        (N,) LongTensor, a permutation of range(N).
    """
    labels = torch.as_tensor(labels, dtype=torch.long)
    n = labels.numel()
    shuffle = torch.randperm(n, generator=generator)
    shuffled = labels[shuffle]
    by_class = torch.argsort(shuffled, stable=True)
    counts = torch.bincount(shuffled)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.empty(n, dtype=torch.long)
    rank[by_class] = torch.arange(n) - starts[shuffled[by_class]]
    position = (rank.double() + 0.5) / counts[shuffled].double()
    return shuffle[torch.argsort(position, stable=True)]


# --- losses and metrics ------------------------------------------------------------------------


def check_logits(logits: torch.Tensor, targets: torch.Tensor) -> None:
    """Raise a QRNNError unless logits have shape (*targets.shape, C)."""
    if logits.dim() != targets.dim() + 1 or logits.shape[:-1] != targets.shape:
        raise QRNNError(
            f"logits of shape {tuple(logits.shape)} do not fit targets of shape "
            f"{tuple(targets.shape)}: expected logits of shape {(*targets.shape, 'C')}"
        )


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of logits (..., C) against class indices (...), e.g. (B, T, C)/(B, T)."""
    check_logits(logits, targets)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def accuracy(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """Fraction of positions where the arg-max of logits (..., C) equals the target (...)."""
    check_logits(logits, targets)
    return (logits.argmax(dim=-1) == targets).double().mean().item()
