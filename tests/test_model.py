"""The QRNN model layer: readouts against the backend, gradients, parameter counts."""

from __future__ import annotations

import pytest
import torch

import qrnn
from qrnn.baselines import count_parameters
from qrnn.model import ModelConfig, QRNNCore, build_model, parameter_report

SMALL = dict(n_qubits=3, n_layers=1, hidden=8, embed_dim=4)


def _model(**overrides):
    config = ModelConfig(**{**SMALL, **overrides})
    return build_model(config, input_kind="tokens", n_inputs=5, n_outputs=3, target="step")


def test_core_readouts_equal_the_backends_own_steps():
    torch.manual_seed(0)
    core = QRNNCore(4, ModelConfig(**SMALL))
    inputs = torch.randn(2, 5, 4)  # (B, T, E)
    angles = []
    core.controller.register_forward_hook(lambda _m, _i, out: angles.append(out[0].detach()))
    features, _ = core(inputs)
    assert features.shape == (2, 5, 9)  # K = 3n readouts
    program = qrnn.get_backend("numpy.statevector").prepare(core.cell)
    state = program.init_state(2)
    for t, thetas in enumerate(angles):
        state, readouts = program.step(state, thetas.double())
        torch.testing.assert_close(features[:, t].double(), readouts, atol=1e-5, rtol=0)


def test_controller_sees_previous_readouts():
    torch.manual_seed(0)
    core = QRNNCore(4, ModelConfig(**SMALL))
    seen = []
    core.controller.register_forward_hook(lambda _m, inp, _o: seen.append(inp[0].detach()))
    features, _ = core(torch.randn(2, 3, 4))
    # The controller input at step t is [e_t ; z_{t-1}]: its last K entries are z_{t-1}.
    torch.testing.assert_close(seen[1][:, 4:], features[:, 0])
    torch.testing.assert_close(seen[2][:, 4:], features[:, 1])


@pytest.mark.parametrize("activation", ["relu", "gelu", "glu", "linear"])
def test_gradients_reach_every_parameter(activation):
    torch.manual_seed(0)
    model = _model(activation=activation, head_hidden=True)
    logits = model(torch.randint(0, 5, (3, 4)))
    assert logits.shape == (3, 4, 3)
    logits.square().sum().backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
        assert parameter.grad.abs().sum() > 0, name


def test_sequence_target_and_pooling():
    config = ModelConfig(**SMALL, pooling="mean")
    model = build_model(config, input_kind="real", n_inputs=2, n_outputs=1, target="sequence")
    assert model(torch.randn(4, 6, 2)).shape == (4, 1)


def test_state_carries_across_segments():
    torch.manual_seed(0)
    core = QRNNCore(4, ModelConfig(**SMALL))
    inputs = torch.randn(2, 6, 4)
    whole, _ = core(inputs)
    first, state = core(inputs[:, :3])
    second, _ = core(inputs[:, 3:], state)
    torch.testing.assert_close(torch.cat([first, second], 1), whole)


def test_parameter_report_splits_classical_and_quantum():
    model = _model()
    report = parameter_report(model)
    assert report["total"] == count_parameters(model)
    assert report["total"] == report["embedding"] + report["head"] + report["recurrent"]
    assert report["angles_per_step"] == 6 and report["readouts_per_step"] == 9
    assert report["quantum_stored"] == 0


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru", "scornn"])
def test_baseline_matched_to_the_qrnn(kind):
    qrnn_params = count_parameters(_model())
    baseline = _model(model=kind)
    assert abs(count_parameters(baseline) - qrnn_params) / qrnn_params < 0.15
    assert baseline(torch.randint(0, 5, (2, 4))).shape == (2, 4, 3)


def test_forward_only_backend_refuses_training():
    model = _model(backend="numpy.statevector")
    with pytest.raises(qrnn.NotDifferentiableError, match="torch.statevector"):
        model(torch.randint(0, 5, (2, 3)))
    with torch.no_grad():
        assert model(torch.randint(0, 5, (2, 3))).shape == (2, 3, 3)


def test_shots_mode_is_selectable_per_model():
    torch.manual_seed(0)
    model = _model(backend_options={"shots": 50, "seed": 1})
    features, _ = model.core(torch.randn(2, 3, 4))
    grid = (features.detach() + 1) * 50 / 2  # shot estimates sit on a grid of 2/N
    torch.testing.assert_close(grid, grid.round(), atol=1e-4, rtol=0)


def test_bad_config_values():
    with pytest.raises(qrnn.QRNNError, match="'activation' must be one of"):
        ModelConfig(activation="tanh")
    with pytest.raises(qrnn.QRNNError, match="'n_qubits' must be a positive int"):
        ModelConfig(n_qubits=0)
