"""Sequence to sequence with soft attention over the encoder's readouts.

An encoder core reads the embedded source x_1..S (padded steps masked out); attention reads
its memory m_1..S: for the QRNN, the readouts z^enc_1..S (for a classical core, its hidden
states). The decoder core starts from the encoder's final state (for the QRNN, its final quantum
state and readouts) and, at step t,

    u_t           = [Embed(y_{t-1}) ; c_{t-1}]        # input feeding: the last context
    f_t, state    = Decoder(u_t, state)               # f_t: z^dec_t, or [z^dec_t ; h_t]
    α_t           = softmax_s score(q_t, m_s)         # q_t = z^dec_t; real source steps only
    c_t           = Σ_s α_ts m_s                      # the context vector
    logits_t      = W_o [f_t ; c_t] + b_o             # (B, V)

with score dot (q·m), general (qᵀ W m) or additive (vᵀ tanh(W_q q + W_k m)), after Luong et al.
(2015) and Bahdanau et al. (2015). Training uses teacher forcing (y_{t-1} is the reference);
decoding is greedy or a beam search. The classical baseline is the same model with LSTM (or
RNN, GRU, scoRNN) cores, at a width matched to the QRNN's parameter count.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from qrnn import baselines
from qrnn.baselines import count_parameters
from qrnn.errors import InvalidInputError, QRNNError
from qrnn.model import ATTENTION_SCORES, ModelConfig, QRNNCore, run_core, state_batch_dim


def attended_size(core: nn.Module) -> int:
    """How many leading features of ``core`` attention reads: the QRNN's K readouts z_t (its
    features are z_t or [z_t ; h_t]), a classical core's whole hidden state."""
    return core.cell.n_readouts if isinstance(core, QRNNCore) else core.feature_size


class Attention(nn.Module):
    """Soft attention of one query per sample over a padded set of keys.

    Args:
        score: ``"dot"`` (needs query_size == key_size), ``"general"`` or ``"additive"``.
        query_size: Fq, the decoder's feature size.
        key_size: Fk, the encoder's feature size.
        hidden: A, the width of the additive score.
    """

    def __init__(self, score: str, query_size: int, key_size: int, hidden: int) -> None:
        super().__init__()
        if score not in ATTENTION_SCORES:
            raise QRNNError(f"attention score must be one of {ATTENTION_SCORES} (got {score!r})")
        if score == "dot" and query_size != key_size:
            raise QRNNError(
                f"dot attention needs queries and keys of one size (got {query_size} and "
                f"{key_size}); use general or additive"
            )
        self.score = score
        if score == "general":
            self.bilinear = nn.Linear(key_size, query_size, bias=False)  # W: m -> W m
        elif score == "additive":
            self.keys = nn.Linear(key_size, hidden, bias=False)
            self.query = nn.Linear(query_size, hidden)
            self.vector = nn.Linear(hidden, 1, bias=False)

    def project(self, keys: torch.Tensor) -> torch.Tensor:
        """The query-independent part of the score, computed once per source: (B, S, *)."""
        if self.score == "general":
            return self.bilinear(keys)  # (B, S, Fq)
        if self.score == "additive":
            return self.keys(keys)  # (B, S, A)
        return keys

    def forward(
        self, query: torch.Tensor, keys: torch.Tensor, projected: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Attend.

        Args:
            query: (B, Fq).
            keys: (B, S, Fk), the values averaged into the context as well.
            projected: ``project(keys)``.
            mask: (B, S) bool, False at padded source steps.

        Returns:
            (context (B, Fk), weights (B, S)); the weights of each row sum to one.
        """
        if self.score == "additive":
            hidden = torch.tanh(projected + self.query(query).unsqueeze(1))  # (B, S, A)
            scores = self.vector(hidden).squeeze(-1)  # (B, S)
        else:
            scores = torch.einsum("bsf,bf->bs", projected, query)  # (B, S)
        weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
        return torch.einsum("bs,bsf->bf", weights, keys), weights


@attrs.frozen
class Encoded:
    """What the decoder needs from the encoder, batch-first (one row per sample or beam)."""

    memory: torch.Tensor  # (B, S, Fk) what attention reads: the encoder's readouts z^enc_s
    projected: torch.Tensor  # (B, S, *) Attention.project(memory)
    mask: torch.Tensor  # (B, S) bool, False at padded source steps
    state: Any  # the encoder's final state, the decoder's first

    def select(self, rows: torch.Tensor, batch_dim: int) -> Encoded:
        """The rows ``rows`` (R,) of every part: R copies or a reordering of the batch."""
        return Encoded(
            self.memory[rows], self.projected[rows], self.mask[rows],
            select_state(self.state, rows, batch_dim),
        )


def select_state(state: Any, rows: torch.Tensor, batch_dim: int = 0) -> Any:
    """Rows of a recurrent state (tensors or arrays, alone or in tuples) along ``batch_dim``.

    Raises:
        InvalidInputError: the state holds something else (beam search then needs another
            backend).
    """
    if isinstance(state, (tuple, list)):
        return type(state)(select_state(part, rows, batch_dim) for part in state)
    if isinstance(state, torch.Tensor):
        return state.index_select(batch_dim, rows.to(state.device))
    if isinstance(state, np.ndarray):
        return np.take(state, rows.cpu().numpy(), axis=batch_dim)
    raise InvalidInputError(
        f"beam search reorders recurrent states made of tensors or arrays, got a "
        f"{type(state).__name__}; decode greedily (beam size 1) or use a statevector backend"
    )


class Seq2Seq(nn.Module):
    """Encoder core -> attention -> decoder core with input feeding.

    Attention reads the :func:`attended_size` leading features of each core (the QRNN's
    readouts); the output layer reads all the decoder's features and the context.

    Args:
        encoder: a recurrent core over the embedded source, ``input_size`` E.
        decoder: a core of input size E + attended_size(encoder) that accepts the encoder's
            final state as its own.
        n_source: source vocabulary size.
        n_target: target vocabulary size V.
        embed_dim: E.
        attention: the score, one of :data:`~qrnn.model.ATTENTION_SCORES`.
        attention_hidden: A, the additive score's width.
        pad_id: the padding id of both vocabularies.
        bos_id: the target id that starts decoding.
        eos_id: the target id that ends a translation.
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        n_source: int,
        n_target: int,
        embed_dim: int,
        attention: str,
        attention_hidden: int,
        pad_id: int,
        bos_id: int,
        eos_id: int,
    ) -> None:
        super().__init__()
        self.source_embed = nn.Embedding(n_source, embed_dim)
        self.target_embed = nn.Embedding(n_target, embed_dim)
        self.encoder = encoder
        self.decoder = decoder
        self.key_size, self.query_size = attended_size(encoder), attended_size(decoder)
        self.attention = Attention(attention, self.query_size, self.key_size, attention_hidden)
        self.output = nn.Linear(decoder.feature_size + self.key_size, n_target)
        self.pad_id, self.bos_id, self.eos_id = pad_id, bos_id, eos_id
        self._batch_dim = state_batch_dim(decoder)

    def encode(self, source: torch.Tensor, mask: torch.Tensor) -> Encoded:
        """Run the encoder over source ids (B, S) with their (B, S) mask."""
        features, state = run_core(self.encoder, self.source_embed(source), None, mask)
        memory = features[..., : self.key_size]  # (B, S, Fk)
        return Encoded(memory, self.attention.project(memory), mask, state)

    def step(
        self, tokens: torch.Tensor, state: Any, context: torch.Tensor, encoded: Encoded
    ) -> tuple[torch.Tensor, Any, torch.Tensor, torch.Tensor]:
        """One decoder step from the previous tokens (B,) and context (B, Fk).

        Returns:
            (logits (B, V), state, context (B, Fk), attention weights (B, S)).
        """
        inputs = torch.cat([self.target_embed(tokens), context], dim=-1).unsqueeze(1)
        features, state = self.decoder(inputs, state)  # (B, 1, F)
        features = features[:, 0]
        query = features[:, : self.query_size]  # (B, Fq)
        context, weights = self.attention(query, encoded.memory, encoded.projected, encoded.mask)
        return self.output(torch.cat([features, context], dim=-1)), state, context, weights

    def forward(
        self, source: torch.Tensor, source_mask: torch.Tensor, target_in: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher forcing: decode ``target_in`` (B, T), ``<bos>`` then the reference.

        Returns:
            (logits (B, T, V) for the next tokens, attention weights (B, T, S)).
        """
        encoded = self.encode(source, source_mask)
        state, context = encoded.state, encoded.memory.new_zeros(encoded.memory[:, 0].shape)
        logits, weights = [], []
        for t in range(target_in.shape[1]):
            step_logits, state, context, step_weights = self.step(
                target_in[:, t], state, context, encoded
            )
            logits.append(step_logits)
            weights.append(step_weights)
        return torch.stack(logits, 1), torch.stack(weights, 1)

    @torch.no_grad()
    def greedy(
        self, source: torch.Tensor, source_mask: torch.Tensor, max_len: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Greedy decoding: the most likely token at every step, until ``<eos>`` or max_len.

        Returns:
            (tokens (B, L) ending with ``<eos>`` then ``<pad>``, attention weights (B, L, S)).
        """
        encoded = self.encode(source, source_mask)
        batch = source.shape[0]
        tokens = source.new_full((batch,), self.bos_id)
        state, context = encoded.state, encoded.memory.new_zeros(encoded.memory[:, 0].shape)
        finished = torch.zeros(batch, dtype=torch.bool, device=source.device)
        outputs, weights = [], []
        for _ in range(max_len):
            logits, state, context, step_weights = self.step(tokens, state, context, encoded)
            tokens = logits.argmax(-1).masked_fill(finished, self.pad_id)
            outputs.append(tokens)
            weights.append(step_weights)
            finished |= tokens == self.eos_id
            if bool(finished.all()):
                break
        return torch.stack(outputs, 1), torch.stack(weights, 1)

    @torch.no_grad()
    def beam_search(
        self,
        source: torch.Tensor,
        source_mask: torch.Tensor,
        beam_size: int,
        max_len: int,
        length_penalty: float = 1.0,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Beam search: keep the ``beam_size`` best partial translations of every source.

        Finished beams stay in the beam at their score. The best final beam maximises
        log p / length**length_penalty (the length counts ``<eos>``); with beam size 1 this is
        greedy decoding.

        Returns:
            (tokens (B, L) ending with ``<eos>`` then ``<pad>``, attention weights (B, L, S)).
        """
        if beam_size < 1:
            raise QRNNError(f"the beam size must be >= 1 (got {beam_size})")
        batch, k = source.shape[0], beam_size
        encoded = self.encode(source, source_mask)
        # beams of sample b are rows b*k .. b*k + k - 1
        beams = torch.arange(batch, device=source.device).repeat_interleave(k)
        encoded = encoded.select(beams, self._batch_dim)
        state, context = encoded.state, encoded.memory.new_zeros(encoded.memory[:, 0].shape)
        tokens = source.new_full((batch * k,), self.bos_id)
        scores = torch.full((batch, k), float("-inf"), device=source.device)
        scores[:, 0] = 0.0  # the first step expands one beam only
        finished = torch.zeros(batch * k, dtype=torch.bool, device=source.device)
        lengths = torch.zeros(batch * k, device=source.device)
        sequences = source.new_zeros((batch * k, 0))
        weights = encoded.memory.new_zeros((batch * k, 0, source.shape[1]))
        for _ in range(max_len):
            logits, state, context, step_weights = self.step(tokens, state, context, encoded)
            log_probs = F.log_softmax(logits.float(), dim=-1)  # (B*k, V)
            # a finished beam continues only with <pad>, at no cost
            log_probs[finished] = float("-inf")
            log_probs[finished, self.pad_id] = 0.0
            n_vocab = log_probs.shape[-1]
            total = (scores.reshape(-1, 1) + log_probs).reshape(batch, k * n_vocab)
            scores, best = total.topk(k, dim=-1)  # (B, k)
            rows = (torch.arange(batch, device=best.device).unsqueeze(1) * k
                    + best // n_vocab).reshape(-1)  # (B*k,) the beam each new beam extends
            tokens = (best % n_vocab).reshape(-1)
            state = select_state(state, rows, self._batch_dim)
            context = context[rows]
            lengths = lengths[rows] + (~finished[rows]).float()
            finished = finished[rows] | (tokens == self.eos_id)
            sequences = torch.cat([sequences[rows], tokens.unsqueeze(1)], 1)
            weights = torch.cat([weights[rows], step_weights[rows].unsqueeze(1)], 1)
            if bool(finished.all()):
                break
        normalised = scores / lengths.reshape(batch, k).clamp(min=1) ** length_penalty
        chosen = torch.arange(batch, device=source.device) * k + normalised.argmax(-1)
        return sequences[chosen], weights[chosen]


def build_seq2seq(
    config: ModelConfig, n_source: int, n_target: int, pad_id: int, bos_id: int, eos_id: int
) -> Seq2Seq:
    """The attention seq2seq ``config`` describes (``config.attention`` picks the score).

    A classical model with ``hidden_size=None`` gets the core width whose total parameter count
    is closest to the QRNN seq2seq built from the same config.
    """
    embed = config.embed_dim

    def make(encoder: nn.Module, decoder: nn.Module) -> Seq2Seq:
        return Seq2Seq(
            encoder, decoder, n_source, n_target, embed, config.attention, config.hidden,
            pad_id, bos_id, eos_id,
        )

    if config.model == "qrnn":
        encoder = QRNNCore(embed, config)
        return make(encoder, QRNNCore(embed + attended_size(encoder), config))

    def classical(width: int) -> Seq2Seq:
        return make(
            baselines.build_core(config.model, embed, width),
            baselines.build_core(config.model, embed + width, width),
        )

    width = config.hidden_size
    if width is None:
        target = count_parameters(
            build_seq2seq(
                attrs.evolve(config, model="qrnn"), n_source, n_target, pad_id, bos_id, eos_id
            )
        )
        width = baselines.match_hidden_size(classical, target)
    return classical(width)
