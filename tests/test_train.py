"""The Trainer: run directory, checkpoints, exact resume, early stopping, evaluation."""

from __future__ import annotations

import json

import pytest
import torch

from qrnn.errors import QRNNError
from qrnn.model import ModelConfig
from qrnn.train import RunConfig, TrainConfig, Trainer, load_preset, load_run

TINY_TASK = {"delay": 2, "n_train": 48, "n_valid": 16, "n_test": 16}


def _config(**train):
    return RunConfig(
        task="copying",
        task_options=TINY_TASK,
        model=ModelConfig(n_qubits=2, n_layers=1, hidden=6, embed_dim=3, dropout=0.1),
        train=TrainConfig(**{"epochs": 3, "batch_size": 8, "seed": 5, **train}),
    )


def _metrics(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_run_directory_contents(tmp_path):
    trainer = Trainer(_config(epochs=2), tmp_path / "run", progress=False)
    seen = []
    records = trainer.fit(on_epoch=seen.append)
    assert [r["epoch"] for r in records] == [1, 2]
    assert seen == records
    assert {"train_loss", "valid_loss", "valid_accuracy", "lr", "steps_per_s"} <= records[0].keys()
    assert _metrics(tmp_path / "run") == records
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert RunConfig.from_dict(saved) == _config(epochs=2)
    assert {p.name for p in (tmp_path / "run").iterdir()} == {
        "config.json",
        "metrics.jsonl",
        "checkpoint.pt",
        "best.pt",
    }


def test_interrupt_then_resume_matches_uninterrupted(tmp_path, monkeypatch):
    reference = Trainer(_config(), tmp_path / "reference", progress=False).fit()

    trainer = Trainer(_config(), tmp_path / "run", progress=False)
    calls = {"n": 0}
    original_loss = trainer.task.loss

    def interrupting_loss(*args):
        calls["n"] += trainer.model.training  # count training batches, not evaluation
        if calls["n"] == 9:  # third batch of the second epoch (6 batches per epoch)
            raise KeyboardInterrupt
        return original_loss(*args)

    monkeypatch.setattr(trainer.task, "loss", interrupting_loss)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    assert [r["epoch"] for r in _metrics(tmp_path / "run")] == [1]

    resumed = Trainer.resume(tmp_path / "run", progress=False)
    assert (resumed.epoch, resumed.batch_in_epoch) == (1, 2)
    resumed.fit()
    for got, want in zip(_metrics(tmp_path / "run"), reference, strict=True):
        for key in ("epoch", "step", "train_loss", "valid_loss", "valid_accuracy"):
            assert got[key] == pytest.approx(want[key], rel=1e-6, abs=1e-7), key


def test_early_stopping(tmp_path):
    trainer = Trainer(_config(epochs=20, lr=0.0, patience=2), tmp_path / "run", progress=False)
    records = trainer.fit()
    assert len(records) == 3  # the first epoch sets the best; two stale epochs stop it


def test_time_limit_stops_after_an_epoch(tmp_path):
    records = Trainer(_config(epochs=20, time_limit=1e-9), tmp_path / "run", progress=False).fit()
    assert len(records) == 1


def test_cosine_schedule_decays_to_zero(tmp_path):
    trainer = Trainer(_config(epochs=2, schedule="cosine"), tmp_path / "run", progress=False)
    records = trainer.fit()
    assert records[0]["lr"] == pytest.approx(trainer.config.train.lr / 2)
    assert records[-1]["lr"] == pytest.approx(0.0, abs=1e-12)


def test_load_run_on_another_backend(tmp_path):
    Trainer(_config(epochs=1), tmp_path / "run", progress=False).fit()
    own = load_run(tmp_path / "run").test_metrics()
    other = load_run(tmp_path / "run", backend="numpy.statevector").test_metrics()
    assert other["loss"] == pytest.approx(own["loss"], abs=1e-5)
    assert other["accuracy"] == own["accuracy"]


def test_resume_needs_a_run_directory(tmp_path):
    with pytest.raises(QRNNError, match="not a run directory"):
        Trainer.resume(tmp_path)


def test_preset_rejects_unknown_keys(tmp_path):
    preset = tmp_path / "bad.toml"
    preset.write_text('task = "copying"\n[model]\nqubits = 3\n')
    with pytest.raises(QRNNError, match=r"Unknown config key\(s\) in \[model\]: \['qubits'\]"):
        load_preset(preset)


def test_checkpoint_is_written_atomically(tmp_path, monkeypatch):
    trainer = Trainer(_config(epochs=1), tmp_path / "run", progress=False)
    trainer.fit()
    before = (tmp_path / "run" / "checkpoint.pt").read_bytes()

    def failing_save(obj, path):
        path.write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(OSError):
        trainer.save_checkpoint()
    assert (tmp_path / "run" / "checkpoint.pt").read_bytes() == before
