"""Classical baseline cores: shapes, gradients, scoRNN orthogonality, modReLU, width matching."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from qrnn.baselines import (
    BASELINE_KINDS,
    ClassicalCore,
    ModReLU,
    RecurrentCore,
    SCORNNCore,
    build_core,
    count_parameters,
    match_hidden_size,
)
from qrnn.errors import InvalidInputError, QRNNError

B, T, E, H = 3, 5, 4, 6


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _inputs(batch: int = B, steps: int = T, size: int = E) -> torch.Tensor:
    return torch.randn(batch, steps, size)


def _state_shapes(kind: str, batch: int, hidden: int) -> list[tuple[int, ...]]:
    if kind == "scornn":
        return [(batch, hidden)]
    if kind == "lstm":
        return [(1, batch, hidden), (1, batch, hidden)]
    return [(1, batch, hidden)]


def _as_list(state) -> list[torch.Tensor]:
    return list(state) if isinstance(state, tuple) else [state]


@pytest.mark.parametrize("kind", BASELINE_KINDS)
def test_shapes_and_protocol(kind):
    core = build_core(kind, E, H)
    assert isinstance(core, RecurrentCore)
    assert core.feature_size == H
    features, state = core(_inputs())
    assert features.shape == (B, T, H)
    assert [tuple(s.shape) for s in _as_list(state)] == _state_shapes(kind, B, H)
    # The final state carries the sequence on: two halves with the state passed between them
    # give the same features as one pass.
    x = _inputs()
    whole, _ = core(x)
    first, mid = core(x[:, :2])
    second, _ = core(x[:, 2:], mid)
    torch.testing.assert_close(torch.cat([first, second], dim=1), whole)


@pytest.mark.parametrize("kind", BASELINE_KINDS)
def test_gradients_reach_every_parameter(kind):
    core = build_core(kind, E, H)
    features, state = core(_inputs())
    loss = features.pow(2).sum() + sum(s.sum() for s in _as_list(state))
    loss.backward()
    for name, param in core.named_parameters():
        assert param.grad is not None, name
        assert param.grad.abs().sum() > 0, name


@pytest.mark.parametrize("kind", ["rnn", "gru", "scornn"])
def test_dropout_hits_features_not_state(kind):
    core = build_core(kind, E, 32, dropout=0.5)
    x = _inputs()
    core.eval()
    clean, clean_state = core(x)
    core.train()
    dropped, state = core(x)
    assert (dropped == 0).sum() > (clean == 0).sum()
    torch.testing.assert_close(state, clean_state)
    torch.testing.assert_close(clean[:, -1], clean_state.reshape(B, 32))


def _assert_orthogonal(w: torch.Tensor) -> None:
    eye = torch.eye(w.shape[0])
    torch.testing.assert_close(w @ w.T, eye, atol=1e-5, rtol=0)


@pytest.mark.parametrize("hidden", [5, 8])
def test_scornn_stays_orthogonal_through_training(hidden):
    core = SCORNNCore(E, hidden)
    _assert_orthogonal(core.recurrent_matrix().detach())
    before = core.recurrent_matrix().detach().clone()
    optimizer = torch.optim.Adam(core.parameters(), lr=0.05)
    for _ in range(3):
        optimizer.zero_grad()
        features, _ = core(_inputs(size=E))
        features.sin().sum().backward()
        optimizer.step()
    after = core.recurrent_matrix().detach()
    assert (after - before).abs().max() > 1e-3  # the step really moved W
    _assert_orthogonal(after)
    skew = core.skew_matrix().detach()
    torch.testing.assert_close(skew, -skew.T)


@pytest.mark.parametrize(
    ("hidden", "n_negative", "expected"),
    [(7, None, 3), (8, None, 4), (6, 0, 0), (6, 6, 6), (6, 2, 2)],
)
def test_scornn_scaling_has_requested_negatives(hidden, n_negative, expected):
    core = SCORNNCore(E, hidden, n_negative=n_negative)
    assert set(core.scaling.tolist()) <= {-1.0, 1.0}
    assert int((core.scaling == -1).sum()) == expected
    assert "scaling" not in dict(core.named_parameters())  # D is fixed
    # With A = 0 the Cayley factor is I, so W = D: its -1 eigenvalues are D's -1 entries.
    with torch.no_grad():
        core.skew_entries.zero_()
    eigenvalues = torch.linalg.eigvals(core.recurrent_matrix().detach())
    assert int((eigenvalues.real < -0.5).sum()) == expected


def test_scornn_matches_a_float64_reference():
    core = SCORNNCore(E, H, n_negative=2)
    with torch.no_grad():
        core.activation.bias.uniform_(-0.3, 0.1)
        core.input_weight.normal_()
    x = _inputs()
    features, final = core(x)

    n = H
    a = np.zeros((n, n))
    a[np.triu_indices(n, 1)] = core.skew_entries.detach().double().numpy()
    a = a - a.T
    d = np.diag([1.0] * (n - 2) + [-1.0] * 2)
    w = np.linalg.inv(np.eye(n) + a) @ (np.eye(n) - a) @ d
    u = core.input_weight.detach().double().numpy()
    b = core.activation.bias.detach().double().numpy()
    h = np.zeros((B, n))
    expected = []
    for t in range(T):
        z = x[:, t].double().numpy() @ u.T + h @ w.T  # h_t = σ(U x_t + W h_{t-1}), rows
        h = np.sign(z) * np.maximum(np.abs(z) + b, 0)
        expected.append(h)
    np.testing.assert_allclose(features.detach().numpy(), np.stack(expected, 1), atol=1e-5)
    np.testing.assert_allclose(final.detach().numpy(), h, atol=1e-5)


def test_scornn_initial_rotation_angles():
    # Henaff-style A: the Cayley transform of each 2x2 block rotates by an angle in [0, π/2].
    core = SCORNNCore(E, 10, n_negative=0)
    eigenvalues = torch.linalg.eigvals(core.recurrent_matrix().detach().double())
    torch.testing.assert_close(eigenvalues.abs(), torch.ones(10, dtype=torch.float64))
    assert eigenvalues.angle().abs().max() <= np.pi / 2 + 1e-6
    assert eigenvalues.angle().abs().max() > 0.0


def test_modrelu_known_values():
    act = ModReLU(4)
    with torch.no_grad():
        act.bias.copy_(torch.tensor([-1.0, 0.5, -1.0, 0.0]))
    z = torch.tensor([[-3.0, -0.25, 0.5, 2.0], [1.5, 0.0, -0.75, -2.0]])
    # sign(z) * relu(|z| + b), worked by hand column by column.
    expected = torch.tensor([[-2.0, -0.75, 0.0, 2.0], [0.5, 0.0, -0.0, -2.0]])
    torch.testing.assert_close(act(z), expected)


def test_count_parameters_counts_trainable_only():
    core = SCORNNCore(E, H)
    assert count_parameters(core) == H * (H - 1) // 2 + E * H + H
    core.input_weight.requires_grad_(False)
    assert count_parameters(core) == H * (H - 1) // 2 + H
    lstm = ClassicalCore("lstm", E, H)
    assert count_parameters(lstm) == 4 * (E * H + H * H + 2 * H)


@pytest.mark.parametrize("kind", BASELINE_KINDS)
def test_match_hidden_size_agrees_with_brute_force(kind):
    high = 48

    def make(width):
        return build_core(kind, E, width)

    counts = {w: count_parameters(make(w)) for w in range(1, high + 1)}
    for target in (counts[1] + 1, 150, 777, 1234, counts[high]):
        best = min(counts, key=lambda w: (abs(counts[w] - target), w))
        assert match_hidden_size(make, target, high=high) == best, target
        assert match_hidden_size(make, target) == best, target  # default high=4096


def test_match_hidden_size_builds_no_model_far_wider_than_the_answer():
    built = []

    def make(width):
        built.append(width)
        return build_core("lstm", E, width)

    width = match_hidden_size(make, 5000)
    assert max(built) <= 2 * width + 1
    assert len(built) <= 2 * np.log2(width + 1) + 3


def test_match_hidden_size_breaks_ties_toward_smaller_width():
    def make(width):
        return nn.Linear(1, 2 * width, bias=False)  # 2 * width parameters

    assert match_hidden_size(make, 5, high=10) == 2  # 4 and 6 are both 1 away
    assert match_hidden_size(make, 6, high=10) == 3
    assert match_hidden_size(make, 7, low=5, high=10) == 5  # low is a hard floor


def test_unknown_kind_lists_the_kinds():
    with pytest.raises(QRNNError, match="unknown baseline kind 'transformer'") as info:
        build_core("transformer", E, H)
    for kind in BASELINE_KINDS:
        assert kind in str(info.value)


def test_unreachable_targets_raise():
    def make(width):
        return build_core("lstm", E, width)

    smallest = count_parameters(make(10))
    with pytest.raises(QRNNError, match="smallest width 10 already has"):
        match_hidden_size(make, smallest // 2 - 1, low=10)
    assert match_hidden_size(make, smallest // 2 + 1, low=10) == 10  # within 2x: allowed
    with pytest.raises(QRNNError, match="largest width 8 has only"):
        match_hidden_size(make, 10**6, high=8)
    with pytest.raises(QRNNError, match="low <= high"):
        match_hidden_size(make, 100, low=9, high=8)


def test_bad_arguments_raise():
    with pytest.raises(InvalidInputError, match=r"\(B, T, 4\)"):
        build_core("gru", E, H)(torch.randn(B, T, E + 1))
    with pytest.raises(InvalidInputError, match=r"\(B, T, 4\)"):
        build_core("scornn", E, H)(torch.randn(T, E))
    with pytest.raises(InvalidInputError, match="state of shape"):
        build_core("scornn", E, H)(_inputs(), torch.zeros(B + 1, H))
    with pytest.raises(QRNNError, match="n_negative"):
        SCORNNCore(E, H, n_negative=H + 1)
    with pytest.raises(QRNNError, match="hidden_size must be a positive integer"):
        build_core("rnn", E, 0)
