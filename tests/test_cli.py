"""The qrnn command line: errors users meet first, and a short end-to-end train/eval/plot."""

from __future__ import annotations

import json
import math

import pytest

from qrnn.cli import main

TINY = [
    "--qubits",
    "2",
    "--layers",
    "1",
    "--hidden",
    "4",
    "--embed-dim",
    "2",
    "--epochs",
    "1",
    "--task-option",
    "n_train=16",
    "--task-option",
    "n_valid=8",
    "--task-option",
    "n_test=8",
    "--task-option",
    "delay=2",
    "-q",
]


def test_unknown_task(capsys):
    assert main(["train", "sorting"]) == 2
    error = capsys.readouterr().err
    assert "unknown task 'sorting'" in error and "copying" in error


def test_unknown_backend(capsys, tmp_path):
    assert (
        main(
            [
                "train",
                "copying",
                "--backend",
                "torch.statevectr",
                *TINY,
                "--run-dir",
                str(tmp_path / "run"),
            ]
        )
        == 2
    )
    error = capsys.readouterr().err
    assert "unknown backend 'torch.statevectr'" in error and "torch.statevector" in error


def test_missing_data_directory(capsys, tmp_path):
    assert main(["train", "mnist", "--task-option", f"data_dir={tmp_path / 'none'}", "-q"]) == 2
    error = capsys.readouterr().err
    assert "train-images-idx3-ubyte" in error and str(tmp_path / "none") in error


def test_unknown_set_key(capsys):
    assert main(["train", "copying", "--set", "model.qubits=3"]) == 2
    assert "Unknown config key" in capsys.readouterr().err


def test_cuda_refused_without_a_gpu(capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["train", "copying", "--device", "cuda", *TINY]) == 2
    assert "no CUDA device" in capsys.readouterr().err


def test_train_eval_plot(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "copying", *TINY, "--run-dir", str(run)]) == 0
    out = capsys.readouterr().out
    assert "memoryless_loss" in out and f"run directory: {run}" in out
    assert main(["eval", str(run), "--backend", "numpy.statevector"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["backend"] == "numpy.statevector" and 0 <= result["accuracy"] <= 1
    assert main(["plot", str(run), "--out", str(tmp_path / "curves.png")]) == 0
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_eval_rejects_a_non_run(capsys, tmp_path):
    assert main(["eval", str(tmp_path)]) == 2
    assert "not a run directory" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["backends"]])
def test_backends_lists_builtins(capsys, command):
    assert main(command) == 0
    out = capsys.readouterr().out
    assert "torch.statevector  [available]" in out and "differentiable" in out


def test_validate_random_cells_and_a_trained_run(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "copying", *TINY, "--run-dir", str(run)]) == 0
    capsys.readouterr()
    assert (
        main(
            [
                "validate",
                "torch.statevector",
                "numpy.statevector",
                "--qubits",
                "2",
                "--cells",
                "1",
                "--steps",
                "3",
                "--run",
                str(run),
                "--samples",
                "4",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "cross-backend readouts" in out and f"trained run {run}" in out
    assert "predictions on numpy.statevector equal to torch.statevector: 100.0%" in out


def test_validate_option_syntax(capsys):
    assert main(["validate", "torch.statevector", "--option", "shots=10"]) == 2
    assert "NAME:KEY=VALUE" in capsys.readouterr().err


def test_demo_prints_the_comparison_table(tmp_path, capsys, monkeypatch):
    import qrnn.demo

    (tmp_path / "copying.toml").write_text(
        'task = "copying"\n'
        "[task_options]\ndelay = 2\nn_train = 32\nn_valid = 8\nn_test = 8\n"
        "[model]\nn_qubits = 2\nn_layers = 1\nhidden = 4\nembed_dim = 2\n"
        "[train]\nepochs = 1\nbatch_size = 16\n"
    )
    monkeypatch.setattr(qrnn.demo, "PRESET_DIR", tmp_path)
    assert main(["demo", "--run-dir", str(tmp_path / "demo"), "-q"]) == 0
    out = capsys.readouterr().out
    header = out.index("model")
    rows = out[header:].splitlines()[1:3]
    assert [row.split()[0] for row in rows] == ["qrnn", "lstm"]
    memoryless = 10 * math.log(8) / 22
    assert all(float(row.split()[3]) == pytest.approx(memoryless, abs=1e-4) for row in rows)
    assert (tmp_path / "demo" / "qrnn" / "best.pt").exists()
    assert (tmp_path / "demo" / "lstm" / "best.pt").exists()
