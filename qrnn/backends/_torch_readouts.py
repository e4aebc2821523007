"""Readouts of ``torch.statevector``: every ⟨ψ|P_k|ψ⟩ of a cell in a few passes over the state.

The fused plan sorts the terms once, when the program is compiled:

1. single-wire terms (all ⟨X_i⟩, ⟨Y_i⟩, ⟨Z_i⟩) come from 2×2 reduced density matrices: the
   wires are cut into the same chunks as a layer of rotations, each chunk's reduced density
   matrix ρ_c = Σ_rest ψ ψ^H is one batched matmul over the state, every wire's 2×2 marginal a
   small gather-and-sum on ρ_c (:func:`marginals`) and every term a tiny matmul on those;
2. Z strings on several wires are diagonal: one pass for |ψ_i|², then a (B, D) @ (D, K_Z) matmul
   with their ±1 eigenvalues;
3. any other string goes through its gather table (:func:`pauli_gather_tables`), one pass per
   term. Without fusion every term does: the readable reference.

The gradient dL/dψ = 2 Σ_k g_k P_k ψ is explicit for the first two groups: per chunk, the terms'
weights g_k make a Kronecker sum of 2×2 matrices, applied with one matmul; autograd handles the
third.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.autograd.function import once_differentiable

from qrnn.backends import _matrices
from qrnn.backends._torch_plan import (
    Chunk,
    balanced_chunks,
    full_diagonal,
    kronecker_sum,
    marginal_index,
    marginals,
)
from qrnn.ir import Readouts


def pauli_gather_tables(readouts: Readouts, n_qubits: int) -> tuple[np.ndarray, np.ndarray]:
    """Index and coefficient tables that turn every readout into one gather.

    A Pauli string P maps basis state i to i XOR m (m: its X/Y wires) with a phase c_i, so
    ⟨ψ|P|ψ⟩ = Σ_i conj(ψ[i XOR m]) · c_i · ψ[i]. Returns (K, D) int64 indices i XOR m_k and
    (K, D) complex128 coefficients c_{k,i}.
    """
    dim = 2**n_qubits
    basis = np.arange(dim)
    index = np.empty((len(readouts), dim), dtype=np.int64)
    coeff = np.empty((len(readouts), dim), dtype=np.complex128)
    for k, term in enumerate(readouts):
        flip = np.zeros(dim, dtype=np.int64)
        phase = np.ones(dim, dtype=np.complex128)
        for letter, wire in zip(term.paulis, term.wires, strict=True):
            bit_value = 1 << (n_qubits - 1 - wire)  # wire 0 is the most significant bit
            bit = (basis & bit_value) != 0
            if letter in "XY":
                flip |= bit_value
            if letter == "Y":  # Y|0> = i|1>, Y|1> = -i|0>
                phase = phase * np.where(bit, -1j, 1j)
            elif letter == "Z":
                phase = phase * np.where(bit, -1, 1)
        index[k] = basis ^ flip
        coeff[k] = phase
    return index, coeff


class _Readouts(torch.autograd.Function):
    """The fused readouts with their explicit gradient (autograd mode)."""

    @staticmethod
    def forward(ctx, state, plan):
        ctx.save_for_backward(state)
        ctx.plan = plan
        return plan.values(state)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        (state,) = ctx.saved_tensors
        return ctx.plan.backward(state, grad), None


class ReadoutPlan:
    """The cell's K readouts of (B, D) states as a (B, K) real tensor.

    Args:
        readouts: the cell's terms.
        n_qubits: n.
        fused: sort the terms into the fast groups (else gather every term).
        dtype: complex dtype of the state.
        device: torch device.
    """

    def __init__(self, readouts: Readouts, n_qubits: int, *, fused: bool, dtype: torch.dtype,
                 device: torch.device) -> None:
        to = {"dtype": dtype, "device": device}
        self.fused = fused
        terms = list(readouts)
        single = [k for k, t in enumerate(terms) if fused and len(t.wires) == 1]
        diagonal = [k for k, t in enumerate(terms)
                    if fused and len(t.wires) > 1 and set(t.paulis) == {"Z"}]
        gathered = [k for k in range(len(terms)) if k not in single and k not in diagonal]
        # 1) single wires: chunks holding them, and Q (4W, K_1) with ⟨P_k⟩ = Re Σ ρ_w[a, c] P[c, a].
        needed = {terms[k].wires[0] for k in single}
        self.chunks = [Chunk(first, size, n_qubits) for first, size in balanced_chunks(0, n_qubits)
                       if needed & set(range(first, first + size))]
        wires = [w for chunk in self.chunks for w in chunk.wires]
        self.indices = [torch.as_tensor(marginal_index(len(c.wires)), device=device)
                        for c in self.chunks]
        picks = np.zeros((len(wires), 2, 2, len(single)), dtype=np.complex128)
        for column, k in enumerate(single):
            picks[wires.index(terms[k].wires[0]), :, :, column] = _matrices.PAULI[terms[k].paulis].T
        self.picks = torch.as_tensor(picks.reshape(4 * len(wires), len(single)), **to)
        # 2) Z strings: (D, K_Z) eigenvalues ±1.
        signs = [full_diagonal(_z_string(len(terms[k].wires)), terms[k].wires, n_qubits).real
                 for k in diagonal]
        real = torch.empty((), dtype=dtype).real.dtype
        self.signs = torch.as_tensor(np.array(signs).reshape(-1, 2**n_qubits).T, dtype=real,
                                     device=device)
        # 3) the rest: gather tables.
        self.index = self.coeff = None
        if gathered:
            index, coeff = pauli_gather_tables(Readouts([terms[k] for k in gathered]), n_qubits)
            self.index = torch.as_tensor(index, device=device)  # (K_G, D)
            self.coeff = torch.as_tensor(coeff, **to)  # (K_G, D)
        # The groups' outputs go back to the cell's term order.
        grouped = single + diagonal + gathered
        self.grouped = torch.as_tensor(grouped, dtype=torch.int64, device=device)
        self.order = torch.as_tensor(np.argsort(grouped), device=device)

    def __call__(self, state: torch.Tensor) -> torch.Tensor:
        if self.fused and torch.is_grad_enabled() and state.requires_grad:
            return _Readouts.apply(state, self)
        return self.values(state)

    def values(self, state: torch.Tensor) -> torch.Tensor:
        """The readouts of a (B, D) state, (B, K), without recording a gradient of their own."""
        parts = []
        if self.chunks:
            rho = [marginals(chunk.transition(state, state), index).flatten(1)  # (B, 4g)
                   for chunk, index in zip(self.chunks, self.indices, strict=True)]
            parts.append((torch.cat(rho, 1) @ self.picks).real)  # (B, K_1)
        if self.signs.shape[1]:
            probs = torch.view_as_real(state).square().sum(-1)  # (B, D)
            parts.append(probs @ self.signs)  # (B, K_Z)
        if self.index is not None:
            parts.append(self._gathered(state))
        return torch.cat(parts, -1)[:, self.order]

    def _gathered(self, state: torch.Tensor) -> torch.Tensor:
        flipped = state[:, self.index]  # (B, K_G, D): ψ[i XOR m_k]
        return (flipped.conj() * self.coeff * state[:, None, :]).sum(-1).real  # (B, K_G)

    def backward(self, state: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        """dL/dψ = 2 Σ_k g_k P_k ψ for (B, D) states and g = dL/d(readouts), (B, K)."""
        grad = grad[:, self.grouped]
        k_single, k_diagonal = self.picks.shape[1], self.signs.shape[1]
        out = torch.zeros_like(state)
        if self.chunks:
            # Per wire H_w = Σ_k g_k P_k, (B, 4W); per chunk their Kronecker sum, one matmul.
            weights = grad[:, :k_single].to(state.dtype) @ self.picks.mH
            weights = weights.view(len(state), -1, 2, 2)
            start = 0
            for chunk, index in zip(self.chunks, self.indices, strict=True):
                blocks = weights[:, start : start + len(chunk.wires)]  # (B, g, 2, 2)
                out = out + chunk.matmul(state, kronecker_sum(blocks, index))
                start += len(chunk.wires)
        if k_diagonal:
            out = out + state * (grad[:, k_single : k_single + k_diagonal] @ self.signs.T)
        out = 2 * out
        if self.index is not None:
            with torch.enable_grad():
                leaf = state.detach().requires_grad_()
                grad_gathered = grad[:, k_single + k_diagonal :]
                out = out + torch.autograd.grad(self._gathered(leaf), leaf, grad_gathered)[0]
        return out


def _z_string(length: int) -> np.ndarray:
    """The (2^k,) diagonal of Z⊗…⊗Z on k wires."""
    diagonal = np.ones(1)
    for _ in range(length):
        diagonal = np.kron(diagonal, [1.0, -1.0])
    return diagonal
