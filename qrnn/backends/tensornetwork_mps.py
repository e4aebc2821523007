"""``tensornetwork.mps``: B matrix product states on ``tensornetwork`` (its pytorch backend).

The state of n qubits is a chain of n site tensors, each (B, χ_left, 2, χ_right). Per step:

- a one-qubit gate is contracted into its site;
- a two-qubit gate on neighbouring sites (i, i+1) contracts both sites with the gate into
  θ (B, χ_l, 2, 2, χ_r) and splits θ back into two sites with an SVD;
- a two-qubit gate on distant wires (the ring's n-1 → 0 CNOT) is a swap network: the far wire is
  swapped next to the near one, the gate applied, and the wire swapped back, 2·(distance - 1)
  extra two-site splits.

Two modes:

- ``max_bond_dim=None`` (exact): every split keeps all min(2χ_l, 2χ_r) singular values and
  makes the square factor the isometry. Nothing is truncated, no canonical form is needed, and
  gradients are exact at every θ. Bonds grow as the gates entangle, up to 2**(n // 2): the cost
  of a dense simulation, so this mode is for small n and as a reference.
- ``max_bond_dim=χ`` below 2**(n // 2) (truncated; a larger cap never binds and runs exact):
  the chain is kept in mixed canonical form around an orthogonality centre, which each two-site
  gate first moves next to its sites, so the SVD of θ is a Schmidt decomposition and keeping its
  χ largest values is the best rank-χ approximation. The discarded weight Σ_{dropped} s² / Σ s²
  adds to the state's truncation error (:meth:`TensorNetworkMPSProgram.truncation_error`) and
  the kept values are renormalised. After each split the centre stays on the side of the next
  two-site gate, so ladders and swap networks need no extra centre moves.

Readouts are local contractions against left and right environments built once per call: a
one-wire term needs the reduced density matrix of its site, a Pauli string the sites between its
outer wires.

Contractions go through ``tensornetwork.ncon`` with the batch as a shared label and an explicit
contraction order for every network. Decompositions call ``torch.linalg.svd`` directly: the
pytorch backend's own ``svd`` is unbatched and, for complex input, returns Vᵀ where V^H is due,
so it does not reconstruct complex tensors. Gradients flow through torch autograd with custom
backwards for the SVD steps (:class:`_Factor`, :class:`_SVD`), since degenerate and zero singular
values (Bell pairs, product states in a larger bond) make the textbook SVD gradient NaN or wrong.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import attrs
import torch

from qrnn.backends import _matrices
from qrnn.backends.base import Backend, Program
from qrnn.backends.capabilities import Capabilities
from qrnn.errors import BackendUnavailableError, QRNNError, UnsupportedCellError
from qrnn.hookspecs import hookimpl
from qrnn.ir import GATE_SPECS, Cell

_DTYPE = torch.complex128
_REAL = torch.float64
#: Exact mode refuses larger cells with two-qubit gates: bonds may reach 2**(n // 2).
MAX_EXACT_QUBITS = 20
#: ``statevector`` refuses larger states: B·2**n amplitudes would not fit comfortably.
MAX_DENSE_QUBITS = 20
#: Singular values below this fraction of the largest count as zero (rank) in gradients.
_RANK_RTOL = 1e-10
_INSTALL_HINT = "pip install 'qrnn[tensornetwork]'"
_PAULI_INDEX = {"X": 0, "Y": 1, "Z": 2}


def _safe_inverse(x: torch.Tensor, eps: float) -> torch.Tensor:
    """1/x broadened to x/(x² + eps): finite (and 0 at x = 0) where 1/x would blow up."""
    return x / (x * x + eps)


def _skew(x: torch.Tensor) -> torch.Tensor:
    return x - x.mH


class _SVD(torch.autograd.Function):
    """Batched reduced SVD A = U diag(s) V^H whose backward stays finite at degeneracies.

    Used only for truncation, where the loss depends on the kept left subspace U_χ U_χ^H. The
    textbook term (a s_j + s_i b)/(s_j² - s_i²), a and b the skew parts of U^H gU and V^H gV, is
    written as ½(a + b)/(s_j - s_i) + ½(a - b)/(s_j + s_i) with broadened inverses: a subspace
    loss has a = 0 inside the kept and inside the dropped block, so only the cross terms across
    the cut survive, and degenerate or zero singular values give 0 instead of NaN.
    """

    @staticmethod
    def forward(ctx, a: torch.Tensor):
        u, s, vh = torch.linalg.svd(a, full_matrices=False)
        ctx.save_for_backward(u, s, vh)
        return u, s, vh

    @staticmethod
    def backward(ctx, grad_u, grad_s, grad_vh):
        u, s, vh = ctx.saved_tensors
        eps = torch.finfo(s.dtype).eps
        v, grad_v = vh.mH, grad_vh.mH
        m, k, n = u.shape[-2], s.shape[-1], vh.shape[-1]
        skew_u = _skew(u.mH @ grad_u)  # (…, k, k)
        skew_v = _skew(v.mH @ grad_v)
        s_row, s_col = s.unsqueeze(-2), s.unsqueeze(-1)  # s_j along rows, s_i down columns
        inner = 0.5 * (skew_u + skew_v) * _safe_inverse(s_row - s_col, eps) + 0.5 * (
            skew_u - skew_v
        ) * _safe_inverse(s_row + s_col, eps)
        inner = inner + torch.diag_embed(grad_s.to(inner.dtype))
        grad_a = u @ inner @ vh
        s_inv = _safe_inverse(s, eps).unsqueeze(-2).to(u.dtype)  # (…, 1, k)
        if m > k:  # components of grad_u outside span(U)
            grad_a = grad_a + ((grad_u - u @ (u.mH @ grad_u)) * s_inv) @ vh
        if n > k:
            grad_a = grad_a + u @ ((grad_v - v @ (v.mH @ grad_v)) * s_inv).mH
        return grad_a


class _Factor(torch.autograd.Function):
    """P (…, m, n) = A B with A = U an isometry (…, m, k) and B = diag(s) V^H, given P's SVD.

    SVD factors are not differentiable where singular values are degenerate (a Bell pair) or
    zero (a bond larger than the Schmidt rank), and both are common in circuits. The backward
    differentiates instead a smooth local section that equals (U, diag(s) V^H) at P and keeps A
    an isometry with A B = P nearby: A_r(P) = polar(P V_r / s_r) on the nonzero singular values,
    the rest of A kept orthogonal to it, B(P) = A(P)^H P. Everything downstream sees the same
    physical state and is gauge invariant, F(AW, W^H B) = F(A, B), which makes
    A^H (gA + P gB^H) Hermitian; the section's backward then reduces to

        gP = A gB + (I - A A^H) gA diag(1/s_r) V_r^H,

    with no cancelling terms to amplify roundoff. For a square A (exact mode) the second term
    vanishes and the gradient is exact at every P. For a tall A (canonical form in truncated
    mode) singular values below ``_RANK_RTOL`` of the largest count as zero: the directions they
    would need raise the Schmidt rank, which no path through states of constant rank does, so at
    generic θ the gradient is exact; at a state whose rank is deficient by accident (an
    entangling angle of exactly 0 on a product state) those directions are lost.
    """

    @staticmethod
    def forward(ctx, p: torch.Tensor, u: torch.Tensor, s: torch.Tensor, vh: torch.Tensor):
        ctx.save_for_backward(u, s, vh)
        return u.clone(), s.to(vh.dtype)[..., None] * vh

    @staticmethod
    def backward(ctx, grad_a, grad_b):
        u, s, vh = ctx.saved_tensors
        grad_p = u @ grad_b
        if u.shape[-2] > u.shape[-1]:  # tall A: gradients that leave span(A)
            inverse = torch.where(s > _RANK_RTOL * s[..., :1], 1 / s.clamp_min(1e-300), 0)
            outside = grad_a - u @ (u.mH @ grad_a)
            grad_p = grad_p + (outside * inverse.to(u.dtype)[..., None, :]) @ vh
        return grad_p, None, None, None


def _svd_values(p: torch.Tensor):
    """The reduced SVD of p as constants (:class:`_Factor` supplies the gradient)."""
    with torch.no_grad():
        return torch.linalg.svd(p, full_matrices=False)


def _factor(p: torch.Tensor, svd, isometry_left: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """P = A B from P's SVD (u, s, vh): A = U when ``isometry_left``, else B = V^H."""
    u, s, vh = svd
    if isometry_left:
        return _Factor.apply(p, u, s, vh)
    b, a = _Factor.apply(p.mH, vh.mH, s, u.mH)  # the same split of P^H, read backwards
    return a.mH, b.mH


@attrs.frozen(eq=False)
class MPSState:
    """B matrix product states."""

    sites: tuple[torch.Tensor, ...]
    """n tensors (B, χ_left, 2, χ_right); χ is 1 at both ends of the chain."""
    center: int | None
    """Orthogonality centre in truncated mode (sites left of it are left isometries, right of
    it right isometries); None in exact mode, which needs no canonical form."""
    discarded: torch.Tensor
    """(B,) float64: discarded weight summed over every truncating SVD so far."""

    @property
    def bond_dims(self) -> tuple[int, ...]:
        """The n - 1 inner bond dimensions."""
        return tuple(int(site.shape[-1]) for site in self.sites[:-1])


@attrs.frozen
class _Op:
    """One step of the compiled chain: a one-site gate, or a two-site gate/swap on (site, site+1).

    A gate's matrix is ``fixed`` ((2, 2) or (2, 2, 2, 2), legs out…, in…) or entry ``rotation``
    of the per-call rotation stack of its arity.
    """

    site: int
    two_site: bool
    fixed: torch.Tensor | None = None
    rotation: int | None = None
    swap: bool = False
    center_right: bool = True  # truncated mode: leave the centre on site+1 (else on site)


class _Rotations:
    """Every rotation of one arity in one tensor: (B, R, d, d) = cos(φ/2) I - i sin(φ/2) G.

    Angles come from θ (slots) or constants; both sit in one index so one gather serves all.
    """

    def __init__(self, n_params: int, n_wires: int) -> None:
        self.n_params = n_params
        self.n_wires = n_wires
        self.eye = torch.eye(2**n_wires, dtype=_DTYPE)
        self.generators: list[torch.Tensor] = []  # each (d, d)
        self.index: list[int] = []  # into [θ, constants]
        self.constants: list[float] = []

    def add(self, generator: torch.Tensor, slot: int | None, angle: float | None) -> int:
        if slot is None:
            self.constants.append(angle)
            slot = self.n_params + len(self.constants) - 1
        self.index.append(slot)
        self.generators.append(generator)
        return len(self.index) - 1

    def freeze(self) -> None:
        """Stack what :meth:`add` collected; call once before :meth:`matrices`."""
        empty = torch.zeros((0,) + self.eye.shape, dtype=_DTYPE)
        self.stack = torch.stack(self.generators) if self.generators else empty  # (R, d, d)
        self.index_t = torch.tensor(self.index, dtype=torch.long)
        self.constants_t = torch.tensor(self.constants, dtype=_REAL)

    def matrices(self, thetas: torch.Tensor) -> torch.Tensor:
        """(B, R, d, d) for thetas (B, P), reshaped to (B, R, 2, …, 2) with legs out…, in…."""
        batch = thetas.shape[0]
        angles = torch.cat([thetas, self.constants_t.expand(batch, -1)], dim=1)[:, self.index_t]
        half = (angles / 2)[..., None, None]  # (B, R, 1, 1)
        mats = torch.cos(half) * self.eye - 1j * torch.sin(half) * self.stack
        return mats.reshape((batch, len(self.index)) + (2,) * (2 * self.n_wires))


def _gate_tensor(matrix, reverse: bool) -> torch.Tensor:
    """A (2^k, 2^k) matrix as legs (out…, in…); ``reverse`` swaps the wires of a 2-qubit gate."""
    k = 1 if len(matrix) == 2 else 2
    tensor = torch.as_tensor(matrix, dtype=_DTYPE).reshape((2,) * (2 * k))
    return tensor.permute(1, 0, 3, 2) if reverse else tensor


class TensorNetworkMPSProgram(Program):
    """State: an :class:`MPSState`. :meth:`truncation_error` reports the error made so far."""

    def __init__(self, backend: TensorNetworkMPSBackend, cell: Cell) -> None:
        super().__init__(backend, cell)
        self._ncon = backend.tn.ncon
        self.max_bond_dim = backend.max_bond_dim
        # A cap at or above the largest bond an n-qubit state can need never binds: run exact.
        self.truncates = self.max_bond_dim is not None and self.max_bond_dim < 2 ** (
            cell.n_qubits // 2
        )
        self._one = _Rotations(cell.n_params, 1)
        self._two = _Rotations(cell.n_params, 2)
        ops: list[_Op] = []
        for gate in cell.circuit.gates:
            ops.extend(self._compile_gate(gate))
        self._one.freeze()
        self._two.freeze()
        self.ops = self._place_centres(ops)
        self._compile_readouts()

    # -- compilation --------------------------------------------------------------------------

    def _compile_gate(self, gate) -> list[_Op]:
        if GATE_SPECS[gate.name].n_wires == 1:
            return [self._gate_op(gate, gate.wires[0], reverse=False)]
        near, far = sorted(gate.wires)
        # Swap network: move wire `far` down to site near+1, apply, move it back.
        down = [_Op(site, True, swap=True) for site in range(far - 1, near, -1)]
        op = self._gate_op(gate, near, reverse=gate.wires[0] > gate.wires[1])
        return down + [op] + down[::-1]

    def _gate_op(self, gate, site: int, reverse: bool) -> _Op:
        two = GATE_SPECS[gate.name].n_wires == 2
        if gate.name in _matrices.FIXED:
            return _Op(site, two, fixed=_gate_tensor(_matrices.FIXED[gate.name], reverse))
        rotations = self._two if two else self._one
        generator = _gate_tensor(_matrices.GENERATORS[gate.name], reverse)
        index = rotations.add(generator.reshape(rotations.eye.shape), gate.slot, gate.angle)
        return _Op(site, two, rotation=index)

    @staticmethod
    def _place_centres(ops: list[_Op]) -> list[_Op]:
        """Leave the centre after each two-site op on the side of the next one (this step's, or
        the first of the next step)."""
        pairs = [i for i, op in enumerate(ops) if op.two_site]
        placed = list(ops)
        for position, i in enumerate(pairs):
            following = ops[pairs[(position + 1) % len(pairs)]].site
            placed[i] = attrs.evolve(ops[i], center_right=following > ops[i].site)
        return placed

    def _compile_readouts(self) -> None:
        self.paulis = torch.stack(
            [torch.as_tensor(_matrices.PAULI[p], dtype=_DTYPE) for p in "XYZ"]
        )  # (3, 2, 2)
        self.single: dict[int, list[tuple[int, int]]] = {}  # wire -> [(k, pauli index)]
        self.strings: list[tuple[int, dict[int, int]]] = []  # (k, {wire: pauli index})
        for k, term in enumerate(self.cell.readouts):
            letters = {w: _PAULI_INDEX[p] for p, w in zip(term.paulis, term.wires, strict=True)}
            if len(letters) == 1:
                self.single.setdefault(term.wires[0], []).append((k, letters[term.wires[0]]))
            else:
                self.strings.append((k, letters))
        wires = [w for term in self.cell.readouts for w in term.wires]
        self._left_until, self._right_from = max(wires), min(wires)  # environments needed

    # -- contract -----------------------------------------------------------------------------

    def batch_size(self, state: MPSState) -> int:
        return int(state.sites[0].shape[0])

    def init_state(self, batch_size: int) -> MPSState:
        site = torch.zeros(batch_size, 1, 2, 1, dtype=_DTYPE)
        site[:, 0, 0, 0] = 1
        sites = tuple(site.clone() for _ in range(self.cell.n_qubits))
        center = 0 if self.truncates else None
        return MPSState(sites, center, torch.zeros(batch_size, dtype=_REAL))

    def evolve(self, state: MPSState, thetas: torch.Tensor) -> MPSState:
        ncon = self._ncon
        one = self._one.matrices(thetas)  # (B, R1, 2, 2)
        two = self._two.matrices(thetas)  # (B, R2, 2, 2, 2, 2)
        sites, center, discarded = list(state.sites), state.center, state.discarded
        for op in self.ops:
            i = op.site
            if not op.two_site:
                if op.fixed is not None:
                    sites[i] = ncon([op.fixed, sites[i]], [[-3, 1], [-1, -2, 1, -4]],
                                    backend="pytorch")
                else:
                    sites[i] = ncon([one[:, op.rotation], sites[i]], [[-1, -3, 1], [-1, -2, 1, -4]],
                                    backend="pytorch")
                continue
            if center is not None:
                center = self._move_centre(sites, center, i)
            if op.swap:
                theta = ncon([sites[i], sites[i + 1]], [[-1, -2, -4, 1], [-1, 1, -3, -5]],
                             backend="pytorch")  # (B, l, 2, 2, r) with the two wires exchanged
            else:
                gate = op.fixed if op.fixed is not None else two[:, op.rotation]
                gate_labels = [-3, -4, 2, 3] if op.fixed is not None else [-1, -3, -4, 2, 3]
                theta = ncon([gate, sites[i], sites[i + 1]],
                             [gate_labels, [-1, -2, 2, 1], [-1, 1, 3, -5]], con_order=[1, 2, 3],
                             backend="pytorch")
            if center is None:
                sites[i], sites[i + 1] = self._split_exact(theta)
            else:
                sites[i], sites[i + 1], weight = self._split_truncated(theta, op.center_right)
                center = i + 1 if op.center_right else i
                discarded = discarded + weight
        return MPSState(tuple(sites), center, discarded)

    def _split_exact(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, l, 2, 2, r) -> two sites keeping every singular value; the square factor (U when
        2l ≤ 2r, else V^H) is the isometry, so the gradient is exact (see :class:`_Factor`)."""
        batch, left, _, _, right = theta.shape
        p = theta.reshape(batch, 2 * left, 2 * right)
        a, b = _factor(p, _svd_values(p), isometry_left=left <= right)
        bond = min(2 * left, 2 * right)
        return a.reshape(batch, left, 2, bond), b.reshape(batch, bond, 2, right)

    def _split_truncated(self, theta: torch.Tensor, center_right: bool):
        """(B, l, 2, 2, r) at the centre -> two sites keeping at most ``max_bond_dim`` singular
        values, and the weight dropped per sample (B,)."""
        batch, left, _, _, right = theta.shape
        p = theta.reshape(batch, 2 * left, 2 * right)
        keep = min(2 * left, 2 * right, self.max_bond_dim)
        if keep == min(2 * left, 2 * right):
            a, b = _factor(p, _svd_values(p), isometry_left=center_right)
            return (a.reshape(batch, left, 2, keep), b.reshape(batch, keep, 2, right),
                    torch.zeros(batch, dtype=_REAL))
        u, s, vh = _SVD.apply(p)
        power = s.detach() ** 2
        kept = power[:, :keep].sum(-1)
        weight = 1 - kept / power.sum(-1)
        u = u[..., :keep]
        # The best rank-χ approximation Π θ, Π = U_χ U_χ^H, renormalised to the state's norm 1.
        p = u @ (u.mH @ p)
        p = p / torch.linalg.matrix_norm(p, keepdim=True)
        svd = (u.detach(), s.detach()[:, :keep] / kept.sqrt()[:, None], vh.detach()[:, :keep])
        a, b = _factor(p, svd, isometry_left=center_right)
        return a.reshape(batch, left, 2, keep), b.reshape(batch, keep, 2, right), weight

    def _move_centre(self, sites: list[torch.Tensor], center: int, i: int) -> int:
        """Move the centre onto site i or i+1 (whichever is nearer) with exact splits."""
        while center < i:
            batch, left, _, right = sites[center].shape
            p = sites[center].reshape(batch, 2 * left, right)
            a, b = _factor(p, _svd_values(p), isometry_left=True)
            sites[center] = a.reshape(batch, left, 2, -1)
            sites[center + 1] = self._ncon([b, sites[center + 1]], [[-1, -2, 1], [-1, 1, -3, -4]],
                                           backend="pytorch")
            center += 1
        while center > i + 1:
            batch, left, _, right = sites[center].shape
            p = sites[center].reshape(batch, left, 2 * right)
            a, b = _factor(p, _svd_values(p), isometry_left=False)
            sites[center] = b.reshape(batch, -1, 2, right)
            sites[center - 1] = self._ncon([sites[center - 1], a], [[-1, -2, -3, 1], [-1, 1, -4]],
                                           backend="pytorch")
            center -= 1
        return center

    # -- readouts -----------------------------------------------------------------------------

    def expectations(self, state: MPSState) -> torch.Tensor:
        ncon, sites, n = self._ncon, state.sites, self.cell.n_qubits
        batch = self.batch_size(state)
        edge = torch.ones(batch, 1, 1, dtype=_DTYPE)
        # left[i]: sites < i contracted with their conjugates, (B, χ, χ); right[i]: sites > i.
        left, right = [edge] * n, [edge] * n
        for i in range(self._left_until):
            left[i + 1] = self._transfer(left[i], sites[i])
        for i in range(n - 1, self._right_from, -1):
            right[i - 1] = ncon([sites[i], right[i], sites[i].conj()],
                                [[-1, -2, 3, 1], [-1, 1, 2], [-1, -3, 3, 2]], con_order=[1, 2, 3],
                                backend="pytorch")
        columns: list[torch.Tensor] = [None] * self.n_readouts  # each (B,)
        for wire, terms in self.single.items():
            rho = ncon([left[wire], sites[wire], right[wire], sites[wire].conj()],
                       [[-1, 1, 2], [-1, 1, -2, 3], [-1, 3, 4], [-1, 2, -3, 4]],
                       con_order=[1, 3, 2, 4], backend="pytorch")  # (B, s, s')
            paulis = self.paulis[[letter for _, letter in terms]]  # (K_w, 2, 2)
            # ⟨P⟩ = Σ_{s,s'} ρ[s, s'] P[s', s]
            values = torch.einsum("bst,kts->kb", rho, paulis).real
            for (k, _), value in zip(terms, values, strict=True):
                columns[k] = value
        for k, letters in self.strings:
            first, last = min(letters), max(letters)
            env = left[first]
            for i in range(first, last + 1):
                op = self.paulis[letters[i]] if i in letters else None
                env = self._transfer(env, sites[i], op)
            columns[k] = ncon([env, right[last]], [[-1, 1, 2], [-1, 1, 2]], backend="pytorch").real
        return torch.stack(columns, dim=1)

    def _transfer(self, env: torch.Tensor, site: torch.Tensor, op=None) -> torch.Tensor:
        """env'[u', d'] = Σ env[u, d] A[u, s, u'] op[s', s] conj(A)[d, s', d'] (op = I if None)."""
        if op is None:
            return self._ncon([env, site, site.conj()],
                              [[-1, 1, 2], [-1, 1, 3, -2], [-1, 2, 3, -3]], con_order=[1, 2, 3],
                              backend="pytorch")
        return self._ncon([env, site, op, site.conj()],
                          [[-1, 1, 2], [-1, 1, 3, -2], [4, 3], [-1, 2, 4, -3]],
                          con_order=[1, 3, 2, 4], backend="pytorch")

    # -- inspection ---------------------------------------------------------------------------

    def truncation_error(self, state: MPSState) -> torch.Tensor:
        """(B,) float64: the discarded weight Σ_{dropped} s² / Σ s² summed over every truncating
        SVD that produced ``state``; 0 in exact mode. To first order it bounds 1 - fidelity
        with the exact state."""
        return state.discarded

    def statevector(self, state: MPSState) -> torch.Tensor:
        """The dense (B, 2**n) states, wire 0 the most significant bit (n ≤ MAX_DENSE_QUBITS)."""
        n = self.cell.n_qubits
        if n > MAX_DENSE_QUBITS:
            raise UnsupportedCellError(
                f"statevector of an MPS needs n_qubits <= {MAX_DENSE_QUBITS} (got n_qubits={n})"
            )
        batch = self.batch_size(state)
        psi = state.sites[0].reshape(batch, 2, -1)  # (B, D', χ)
        for site in state.sites[1:]:
            psi = self._ncon([psi, site], [[-1, -2, 1], [-1, 1, -3, -4]], backend="pytorch")
            psi = psi.reshape(batch, -1, site.shape[-1])
        return psi.reshape(batch, -1)

    def real_dtype(self) -> torch.dtype:
        return _REAL


class TensorNetworkMPSBackend(Backend):
    """Batched matrix product states on ``tensornetwork`` (pytorch backend), differentiable.

    With ``max_bond_dim`` it reaches qubit counts a dense statevector cannot hold (n = 40, a
    shallow ansatz and χ = 32 take well under a second per step), at the price of truncation,
    which ``program.truncation_error(state)`` reports per sample. State and angles are complex128
    and float64, on CPU.

    Args:
        max_bond_dim: largest bond dimension χ kept by each SVD. None (default) is exact, for
            cells up to ``MAX_EXACT_QUBITS`` qubits when they have two-qubit gates.
        shots, seed: see :class:`Backend`.
    """

    name = "tensornetwork.mps"
    capabilities = Capabilities(
        gates=_matrices.STATEVECTOR_GATES,
        differentiable=True,
        statevector=True,
    )

    def __init__(
        self,
        *,
        max_bond_dim: int | None = None,
        shots: int | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__(shots=shots, seed=seed)
        if max_bond_dim is not None and (
            not isinstance(max_bond_dim, int) or isinstance(max_bond_dim, bool) or max_bond_dim < 1
        ):
            raise QRNNError(
                f"'max_bond_dim' must be a positive int, or None for exact (got {max_bond_dim!r})"
            )
        self.max_bond_dim = max_bond_dim
        self.tn = _import_tensornetwork()

    @classmethod
    def check_available(cls) -> None:
        if importlib.util.find_spec("tensornetwork") is None:
            raise BackendUnavailableError(
                f"backend {cls.name!r} needs the 'tensornetwork' package: {_INSTALL_HINT}"
            )

    @property
    def tolerance(self) -> float:
        """1e-9 while no SVD truncates (always in exact mode); truncation adds its own error."""
        return 1e-9

    def compile(self, cell: Cell) -> TensorNetworkMPSProgram:
        two_qubit = any(GATE_SPECS[g.name].n_wires == 2 for g in cell.circuit.gates)
        if self.max_bond_dim is None and two_qubit and cell.n_qubits > MAX_EXACT_QUBITS:
            raise UnsupportedCellError(
                f"exact MPS (max_bond_dim=None) supports at most {MAX_EXACT_QUBITS} qubits with "
                f"two-qubit gates, whose bond dimension may reach 2**(n // 2) (got n_qubits="
                f"{cell.n_qubits}); pass max_bond_dim=N to truncate"
            )
        return TensorNetworkMPSProgram(self, cell)


def _import_tensornetwork() -> Any:
    try:
        import tensornetwork
    except ImportError as error:
        raise BackendUnavailableError(
            f"backend 'tensornetwork.mps' needs the 'tensornetwork' package ({error}): "
            f"{_INSTALL_HINT}"
        ) from None
    return tensornetwork


@hookimpl
def register_backends(register):
    register(TensorNetworkMPSBackend)
