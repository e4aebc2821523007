"""A QRNN trained on torch.statevector predicts the same on every exact backend."""

from __future__ import annotations

import pytest

import qrnn
from qrnn.model import ModelConfig
from qrnn.train import RunConfig, TrainConfig, Trainer
from qrnn.validate import validate_run

EXACT_BACKENDS = ["numpy.statevector", "qiskit.aer", "pennylane.default.qubit", "tensornetwork.mps"]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    config = RunConfig(
        task="copying",
        task_options={"delay": 2, "n_train": 64, "n_valid": 16, "n_test": 16},
        model=ModelConfig(n_qubits=3, n_layers=1, hidden=8, embed_dim=4),
        train=TrainConfig(epochs=2, batch_size=16, lr=1e-2),
    )
    Trainer(config, run_dir, progress=False).fit()
    return run_dir


def test_same_predictions_on_every_exact_backend(trained_run):
    names = ["torch.statevector"] + [n for n in EXACT_BACKENDS if n in qrnn.list_backends(True)]
    assert len(names) == 1 + len(EXACT_BACKENDS), "an exact backend is not installed"
    table, agreement = validate_run(trained_run, names, n_samples=8)
    assert agreement == {name: 1.0 for name in names}
    for line in table.splitlines()[2:]:  # the readout rows: max |Δ| vs torch.statevector
        assert float(line.split()[-3]) < 1e-5, line
