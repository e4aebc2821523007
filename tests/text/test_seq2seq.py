"""The attention seq2seq: attention weights, the decoder's first state, greedy and beam decoding,
and the parameter-matched classical baseline."""

from __future__ import annotations

import itertools

import pytest
import torch

from qrnn.baselines import count_parameters
from qrnn.errors import QRNNError
from qrnn.model import ModelConfig
from qrnn.seq2seq import Attention, build_seq2seq
from qrnn.text import lengths_to_mask

SMALL = dict(n_qubits=3, n_layers=1, hidden=8, embed_dim=4)
PAD, BOS, EOS = 0, 2, 3
N_SOURCE, N_TARGET = 9, 7
LENGTHS = [4, 2, 3]


def _model(**overrides):
    torch.manual_seed(0)
    config = ModelConfig(**{**SMALL, **overrides})
    return build_seq2seq(config, N_SOURCE, N_TARGET, PAD, BOS, EOS).eval()


def _source(lengths=LENGTHS, seed=0):
    generator = torch.Generator().manual_seed(seed)
    steps = max(lengths)
    mask = lengths_to_mask(torch.tensor(lengths), steps)
    ids = torch.randint(4, N_SOURCE, (len(lengths), steps), generator=generator)
    return ids.masked_fill(~mask, PAD), mask


@pytest.mark.parametrize("score", ["dot", "general", "additive"])
def test_attention_weights_sum_to_one_over_real_source_steps(score):
    model = _model(attention=score)
    source, mask = _source()
    target_in = torch.randint(4, N_TARGET, (3, 5))
    logits, weights = model(source, mask, target_in)
    assert logits.shape == (3, 5, N_TARGET)
    assert weights.shape == (3, 5, mask.shape[1])  # (B, T_tgt, S)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, 5))
    assert (weights >= 0).all()
    assert (weights.masked_select(~mask.unsqueeze(1).expand_as(weights)) == 0).all()
    logits.sum().backward()
    assert all(p.grad is not None for p in model.attention.parameters())


def test_dot_attention_needs_equal_sizes():
    with pytest.raises(QRNNError, match="dot attention needs queries and keys of one size"):
        Attention("dot", 4, 6, 8)
    with pytest.raises(QRNNError, match="must be one of"):
        Attention("cosine", 4, 4, 8)


def test_decoder_starts_from_the_encoders_final_quantum_state():
    model = _model()
    source, mask = _source()
    seen = []
    original = model.decoder.forward

    def spy(inputs, state=None, mask=None):
        seen.append(state)
        return original(inputs, state, mask)

    model.decoder.forward = spy
    model(source, mask, torch.full((3, 1), BOS))
    quantum, readouts = seen[0]
    for row, n in enumerate(LENGTHS):
        _, (alone, alone_readouts) = model.encoder(model.source_embed(source[row : row + 1, :n]))
        torch.testing.assert_close(quantum[row], alone[0])
        torch.testing.assert_close(readouts[row], alone_readouts[0])


def test_padded_sources_translate_as_they_do_alone():
    model = _model()
    source, mask = _source()
    tokens, weights = model.greedy(source, mask, max_len=6)
    for row, n in enumerate(LENGTHS):
        alone, alone_weights = model.greedy(source[row : row + 1, :n], mask[row : row + 1, :n], 6)
        steps = alone.shape[1]
        assert tokens[row, :steps].tolist() == alone[0].tolist()
        torch.testing.assert_close(weights[row, :steps, :n], alone_weights[0])


@pytest.mark.parametrize("kind", ["qrnn", "lstm"])
def test_beam_of_one_is_greedy(kind):
    model = _model(model=kind)
    source, mask = _source()
    greedy, greedy_weights = model.greedy(source, mask, max_len=7)
    beam, beam_weights = model.beam_search(source, mask, beam_size=1, max_len=7)
    assert beam.tolist() == greedy.tolist()
    torch.testing.assert_close(beam_weights, greedy_weights)


def test_teacher_forcing_on_the_greedy_output_reproduces_its_choices():
    model = _model()
    source, mask = _source()
    tokens, weights = model.greedy(source, mask, max_len=5)
    target_in = torch.cat([torch.full((3, 1), BOS), tokens[:, :-1]], dim=1)
    with torch.no_grad():
        logits, forced_weights = model(source, mask, target_in)
    finished = torch.cumsum(tokens == EOS, 1) - (tokens == EOS).long() > 0  # steps after <eos>
    assert (logits.argmax(-1) == tokens)[~finished].all()
    torch.testing.assert_close(forced_weights, weights)


def test_wide_beam_finds_the_most_likely_short_translation():
    model = _model()
    source, mask = _source([3])
    beam, _ = model.beam_search(source, mask, beam_size=N_TARGET, max_len=2, length_penalty=0.0)

    def log_prob(sequence):
        target_in = torch.tensor([[BOS, *sequence[:-1]]])
        with torch.no_grad():
            logits, _ = model(source, mask, target_in)
        log_probs = torch.log_softmax(logits[0], -1)
        return sum(log_probs[t, token].item() for t, token in enumerate(sequence))

    candidates = [[EOS]] + [[a, b] for a, b in itertools.product(range(N_TARGET), repeat=2)
                            if a != EOS]
    best = max(candidates, key=log_prob)
    found = [t for t in beam[0].tolist() if t != PAD]
    assert log_prob(found) == pytest.approx(log_prob(best), abs=1e-5)


def test_lstm_baseline_is_matched_to_the_qrnn():
    qrnn_count = count_parameters(_model())
    lstm = _model(model="lstm")
    assert abs(count_parameters(lstm) - qrnn_count) / qrnn_count < 0.1
    source, mask = _source()
    logits, weights = lstm(source, mask, torch.randint(4, N_TARGET, (3, 4)))
    assert logits.shape == (3, 4, N_TARGET) and weights.shape == (3, 4, mask.shape[1])


def test_attention_reads_the_readouts_when_the_head_also_reads_the_controller():
    model = _model(head_hidden=True)
    source, mask = _source()
    encoded = model.encode(source, mask)
    n_readouts = model.encoder.cell.n_readouts
    assert encoded.memory.shape == (3, mask.shape[1], n_readouts)
    features, _ = model.encoder(model.source_embed(source[:1, : LENGTHS[0]]))
    torch.testing.assert_close(encoded.memory[0], features[0, :, :n_readouts])  # z^enc, not h
    assert model.output.in_features == model.decoder.feature_size + n_readouts  # [z ; h ; c]
    greedy, _ = model.greedy(source, mask, max_len=5)
    beam, _ = model.beam_search(source, mask, beam_size=1, max_len=5)
    assert beam.tolist() == greedy.tolist()
