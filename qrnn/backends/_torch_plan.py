"""Compiled plans of ``torch.statevector``: a circuit as a few fused passes over the state.

A plan is derived from the IR once, when a program is compiled, and cached with it. The gates are
cut into runs and each run becomes one *block*:

1. a run of single-qubit gates (the RY and RZ layers of the default ansatz) multiplies, wire by
   wire, into one 2×2 matrix per sample; neighbouring wires are grouped into chunks of at most
   :data:`MAX_CHUNK` wires, and each chunk is one batched matmul with the Kronecker product of
   its wires' matrices;
2. a run of diagonal gates (``rz``, ``rzz``, ``cz``, ``s``, ...) is one elementwise multiply by
   a (B, D) phase built from the per-sample angles;
3. a run of permutation gates (a CNOT ring or ladder, ``swap``) is one precomputed gather;
4. any other gate (``rxx``, ``ryy``) is applied alone on its wires. This is the gate-by-gate
   path, and with fusion off it is the whole plan: the readable reference of the fused one.

A block turns the step's angles into one small differentiable parameter (per-wire 2×2 matrices,
a phase vector, a gate matrix) and expands it into the parameters of its *kernels*. A kernel has
three passes over the state: ``apply`` (U), ``apply_adjoint`` (U†) and ``cotangent``, from which
the block gets dL/d(parameter). :meth:`Plan.backward` chains them into the adjoint method, which
needs no stored intermediate state. Kernels take (B, D) states and apply no validation.
"""

from __future__ import annotations

import abc
import functools
import math

import numpy as np
import torch

from qrnn.backends import _matrices
from qrnn.backends.numpy_sv import apply_matrix
from qrnn.ir import GATE_SPECS, Circuit, Gate

#: Most wires in one chunk of a single-qubit layer. A chunk of g wires costs 2^g complex
#: multiply-adds per amplitude in one matmul; 4-5 balances that against the number of passes
#: (measured on one CPU thread for n = 10..14; see docs/performance.md).
MAX_CHUNK = 5


def full_diagonal(diagonal: np.ndarray, wires: tuple[int, ...], n_qubits: int) -> np.ndarray:
    """The (D,) diagonal of a diagonal gate with (2^k,) entries ``diagonal`` on ``wires``."""
    ones = np.ones((2,) * n_qubits, dtype=np.complex128)
    return apply_matrix(ones, np.diag(diagonal), wires).reshape(-1)


def balanced_chunks(first: int, count: int) -> list[tuple[int, int]]:
    """Split wires first .. first + count - 1 into (first wire, size) chunks of at most
    :data:`MAX_CHUNK` wires, as even as possible, larger ones first."""
    n_chunks = -(-count // MAX_CHUNK)
    sizes = [count // n_chunks + (i < count % n_chunks) for i in range(n_chunks)]
    starts = first + np.cumsum([0, *sizes[:-1]])
    return [(int(start), size) for start, size in zip(starts, sizes, strict=True)]


@functools.lru_cache
def marginal_index(size: int) -> np.ndarray:
    """(g, 2, 2, G/2) positions in a flattened (G, G) matrix on g wires: [w, a, c] lists the
    entries (A, C) with bits a and c on wire w that agree on every other wire.

    Summing a matrix τ's entries there gives each wire's 2×2 partial trace (:func:`marginals`);
    adding h_w[a, c] there builds the Kronecker sum Σ_w I⊗…⊗h_w⊗…⊗I (:func:`kronecker_sum`).
    """
    dim = 2**size
    others = np.arange(dim // 2)
    out = np.empty((size, 2, 2, dim // 2), dtype=np.int64)
    for w in range(size):
        bit = size - 1 - w  # wire 0 of the chunk is its most significant bit
        high, low = (others >> bit) << (bit + 1), others & ((1 << bit) - 1)
        for a in range(2):
            for c in range(2):
                out[w, a, c] = (high | (a << bit) | low) * dim + (high | (c << bit) | low)
    return out


def marginals(matrix: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Per-wire 2×2 partial traces of (B, G, G) matrices: (B, g, 2, 2); ``index`` is
    :func:`marginal_index` of g."""
    return matrix.flatten(1)[:, index].sum(-1)


def kronecker_sum(blocks: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Σ_w I⊗…⊗h_w⊗…⊗I for per-wire (B, g, 2, 2) blocks h: (B, G, G)."""
    batch, dim = blocks.shape[0], 2 * index.shape[-1]
    out = blocks.new_zeros(batch, dim * dim)
    out.index_add_(1, index.flatten(), blocks.unsqueeze(-1).expand(-1, *index.shape).flatten(1))
    return out.view(batch, dim, dim)


def gate_kind(name: str) -> str:
    """How a plan fuses a gate: ``"diagonal"``, ``"local"``, ``"permutation"`` or ``"gate"``."""
    matrix = _matrices.GENERATORS.get(name, _matrices.FIXED.get(name))
    if np.all(matrix == np.diag(np.diag(matrix))):
        return "diagonal"
    if GATE_SPECS[name].n_wires == 1:
        return "local"
    if name in _matrices.FIXED and set(np.unique(matrix)) <= {0, 1}:
        return "permutation"
    return "gate"


def gate_basis(gate: Gate | None) -> np.ndarray:
    """(2, 4^k) rows A and C with matrix = cos(θ/2)·A + sin(θ/2)·C for the gate's angle θ.

    Rotations exp(-iθG/2) have A = I and C = -iG; a fixed gate M has A = M and C = 0 (its
    half-angle is kept at 0), so every gate's matrix comes from one formula. ``None`` stands
    for the one-wire identity.
    """
    if gate is None:
        return np.stack([np.eye(2).reshape(-1), np.zeros(4)]).astype(np.complex128)
    if gate.name in _matrices.FIXED:
        first = _matrices.FIXED[gate.name]
        return np.stack([first.reshape(-1), np.zeros(first.size)])
    second = -1j * _matrices.GENERATORS[gate.name]
    return np.stack([np.eye(len(second)).reshape(-1), second.reshape(-1)])


def gate_matrices(cs: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """Matrices of g gates: (B, g, 2) cos/sin of their half-angles and (g, 2, 4^k) bases ->
    (B, g, 2^k, 2^k)."""
    flat = cs[..., :1] * basis[:, 0] + cs[..., 1:] * basis[:, 1]  # (B, g, 4^k)
    dim = math.isqrt(basis.shape[-1])
    return flat.view(*cs.shape[:-1], dim, dim)


def kron(factors: torch.Tensor) -> torch.Tensor:
    """Kronecker products of 2×2 factors: (..., g, 2, 2) -> (..., 2^g, 2^g), the first factor
    on the most significant bit."""
    # Built from the last factor up, so the product's innermost axis is the contiguous one of
    # the partial product (a fifth faster than appending factors on the right).
    out = factors[..., -1, :, :]
    for k in range(factors.shape[-3] - 2, -1, -1):
        size = 2 * out.shape[-1]
        out = factors[..., k, :, None, :, None] * out[..., None, :, None, :]  # (..., 2, m, 2, m)
        out = out.reshape(*out.shape[:-4], size, size)
    return out


class Chunk:
    """Contiguous wires ``first .. first + size - 1``: the state seen as (B, H, G, R)."""

    def __init__(self, first: int, size: int, n_qubits: int) -> None:
        self.wires = range(first, first + size)
        self.before = 2**first  # H: index over the wires above the chunk
        self.size = 2**size  # G: the chunk's own index
        self.after = 2 ** (n_qubits - first - size)  # R: the wires below

    def matmul(self, state: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
        """Apply a (B or 1, G, G) matrix to the chunk of a (B, D) state."""
        batch = state.shape[0]
        if self.after == 1:  # chunk on the last wires: (B, H, G) @ Mᵀ
            out = state.view(batch, self.before, self.size) @ matrix.mT
        elif self.before == 1:  # on the first wires: (B, G, G) @ (B, G, R)
            out = matrix @ state.view(batch, self.size, self.after)
        else:  # (B, 1, G, G) @ (B, H, G, R): M broadcasts over H
            out = matrix.unsqueeze(1) @ state.view(batch, self.before, self.size, self.after)
        return out.view(batch, -1)

    def transition(self, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        """Σ over the other wires of left ⊗ right^H for (B, D) states: (B, G, G)."""
        batch = left.shape[0]
        if self.after == 1:  # (right^H left)ᵀ: BLAS takes a conjugate only with a transpose
            shape = (batch, self.before, self.size)
            return (right.view(shape).mH @ left.view(shape)).mT
        shape = (batch, self.before, self.size, self.after)
        out = left.view(shape) @ right.view(shape).mH  # (B, H, G, G)
        return out[:, 0] if self.before == 1 else out.sum(1)


# -- kernels: passes over a (B, D) state -----------------------------------------------------------


class Kernel(abc.ABC):
    """One pass over the state with one parameter tensor (or none)."""

    @abc.abstractmethod
    def apply(self, state: torch.Tensor, param: torch.Tensor | None) -> torch.Tensor:
        """U ψ for a (B, D) state."""

    @abc.abstractmethod
    def apply_adjoint(self, state: torch.Tensor, param: torch.Tensor | None) -> torch.Tensor:
        """U† ψ for a (B, D) state."""

    def cotangent(self, grad: torch.Tensor, after: torch.Tensor, before: torch.Tensor,
                  param: torch.Tensor) -> torch.Tensor:
        """What the block needs for dL/d(its parameter), from λ = dL/dψ after the kernel and
        ψ after and before it, all (B, D). Only kernels with a trainable parameter have one."""
        raise NotImplementedError(f"{type(self).__name__} has no trainable parameter")


class ChunkKernel(Kernel):
    """A (B or 1, G, G) matrix on a chunk of wires (the Kronecker product of per-wire ones)."""

    def __init__(self, chunk: Chunk, index: torch.Tensor) -> None:
        self.chunk = chunk
        self.index = index  # (g, 2, 2, G/2): see marginal_index

    def apply(self, state, param):
        return self.chunk.matmul(state, param)

    def apply_adjoint(self, state, param):
        return self.chunk.matmul(state, param.mH.resolve_conj())

    def cotangent(self, grad, after, before, param):
        """Per-wire 2×2 marginals τ_w of Σ λ ψ^H after the chunk: (B, g, 2, 2)."""
        return marginals(self.chunk.transition(grad, after), self.index)


class DiagonalKernel(Kernel):
    """An elementwise phase, (B or 1, D)."""

    def apply(self, state, param):
        return state * param

    def apply_adjoint(self, state, param):
        return state * param.conj()

    def cotangent(self, grad, after, before, param):
        return grad * before.conj()  # (B, D)


class PermutationKernel(Kernel):
    """A fixed permutation of basis states: ψ_out[i] = ψ_in[index[i]]."""

    def __init__(self, index: torch.Tensor) -> None:
        self.index = index
        self.inverse = torch.argsort(index)

    def apply(self, state, param):
        return state[:, self.index]  # advanced indexing: the fastest gather on CPU

    def apply_adjoint(self, state, param):
        return state[:, self.inverse]


class GateKernel(Kernel):
    """A (B or 1, 2^k, 2^k) matrix on any wires, moved last for one batched matmul."""

    def __init__(self, wires: tuple[int, ...], n_qubits: int) -> None:
        self.wires = wires
        self.n_qubits = n_qubits

    def _moved(self, state: torch.Tensor) -> tuple[torch.Tensor, list[int], list[int]]:
        """The state as (B, 2, ..., 2) with the gate's wires as the last axes."""
        n, k = self.n_qubits, len(self.wires)
        axes = [1 + w for w in self.wires]
        last = list(range(n + 1 - k, n + 1))
        return state.reshape(-1, *(2,) * n).movedim(axes, last), axes, last

    def _matmul(self, state: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
        psi, axes, last = self._moved(state)
        moved_shape = psi.shape
        psi = psi.reshape(state.shape[0], -1, matrix.shape[-1]) @ matrix.mT  # (B, R, 2^k)
        return psi.reshape(moved_shape).movedim(last, axes).reshape(state.shape)

    def apply(self, state, param):
        return self._matmul(state, param)

    def apply_adjoint(self, state, param):
        return self._matmul(state, param.mH.resolve_conj())

    def cotangent(self, grad, after, before, param):
        dim = param.shape[-1]
        grad_moved = self._moved(grad)[0].reshape(grad.shape[0], -1, dim)  # (B, R, 2^k)
        before_moved = self._moved(before)[0].reshape(grad.shape[0], -1, dim)
        return grad_moved.mT @ before_moved.conj()  # Σ_R λ ψ^H: (B, 2^k, 2^k)


# -- blocks: a run of gates, its parameter and its kernels -----------------------------------------


def _index(values: list, to: dict) -> torch.Tensor:
    """An int64 index tensor on the plan's device (indexing with a list converts it per call)."""
    return torch.as_tensor(values, dtype=torch.int64, device=to["device"])


class Block(abc.ABC):
    """A run of gates: one differentiable parameter and the kernels that apply it.

    Args:
        gates: the run as (column, gate) pairs; the column indexes the step's half-angles.
        n_qubits: n.
        to: dtype and device of the state.
    """

    kernels: tuple[Kernel, ...]

    def __init__(self, gates: list[tuple[int, Gate]], n_qubits: int, to: dict) -> None:
        self.columns = _index([column for column, _ in gates], to)
        self.trainable = any(gate.slot is not None for _, gate in gates)

    @abc.abstractmethod
    def params(self, half: torch.Tensor, cs: torch.Tensor) -> torch.Tensor | None:
        """The block's parameter from the half-angles of every gate, (B, G + 1), and their
        cos/sin, (B, G + 1, 2) complex; column G is an identity's (always 0)."""

    def expand(self, param: torch.Tensor | None) -> list[torch.Tensor | None]:
        """One parameter per kernel."""
        return [param]

    def cotangent(self, param: torch.Tensor, kernel_cotangents: list[torch.Tensor]):
        """dL/d(param) from the kernels' cotangents, in kernel order."""
        (cotangent,) = kernel_cotangents
        return cotangent


class LocalBlock(Block):
    """Single-qubit gates: per-wire 2×2 matrices U (B, W, 2, 2), applied chunk by chunk."""

    def __init__(self, gates: list[tuple[int, Gate]], n_qubits: int, to: dict) -> None:
        super().__init__(gates, n_qubits, to)
        touched = {gate.wires[0] for _, gate in gates}
        # Balanced chunks over the touched span; chunks that no gate touches are dropped.
        low, high = min(touched), max(touched)
        chunks = [Chunk(first, size, n_qubits)
                  for first, size in balanced_chunks(low, high - low + 1)
                  if touched & set(range(first, first + size))]
        wires = [w for chunk in chunks for w in chunk.wires]  # the W wires of U, in order
        identity = len(gates)  # gate index of the identity appended to the run
        # -1: the identity's half-angle, the always-0 last column
        self.columns = _index([column for column, _ in gates] + [-1], to)
        self.basis = torch.as_tensor(
            np.stack([gate_basis(g) for _, g in gates] + [gate_basis(None)]), **to)
        # table[d, w]: index of the d-th gate on wire w of U, in circuit order (identity if none)
        per_wire = {w: [] for w in wires}
        for index, (_, gate) in enumerate(gates):
            per_wire[gate.wires[0]].append(index)
        depth = max(len(row) for row in per_wire.values())
        self.table = _index([[row[d] if d < len(row) else identity for row in per_wire.values()]
                             for d in range(depth)], to)
        # Runs of equal-size chunks get their Kronecker products in one batched call.
        self.groups: list[tuple[int, int, int]] = []  # (first index in U, chunks, chunk size)
        start = 0
        for chunk in chunks:
            size = len(chunk.wires)
            if self.groups and self.groups[-1][2] == size:
                first, count, _ = self.groups[-1]
                self.groups[-1] = (first, count + 1, size)
            else:
                self.groups.append((start, 1, size))
            start += size
        self.kernels = tuple(
            ChunkKernel(c, torch.as_tensor(marginal_index(len(c.wires)), device=to["device"]))
            for c in chunks)

    def params(self, half, cs):
        mats = gate_matrices(cs[:, self.columns], self.basis)  # (B, gates + 1, 2, 2)
        wires = mats[:, self.table[0]]  # (B, W, 2, 2)
        for row in self.table[1:]:
            wires = mats[:, row] @ wires  # later gates act after earlier ones
        return wires

    def expand(self, param):
        out = []
        for first, count, size in self.groups:
            factors = param[:, first : first + count * size].unflatten(1, (count, size))
            out.extend(kron(factors).unbind(1))  # count × (B, G, G)
        return out

    def cotangent(self, param, kernel_cotangents):
        # ψ_out = U_w ψ_mid on wire w, so dL/dU_w = Σ λ_out ψ_mid^H = τ_w U_w.
        return torch.cat(kernel_cotangents, 1) @ param


class DiagonalBlock(Block):
    """Diagonal gates: phase = exp(-i Σ_g (θ_g/2) s_g) × (fixed gates' phases), (B, D)."""

    def __init__(self, gates: list[tuple[int, Gate]], n_qubits: int, to: dict) -> None:
        super().__init__(gates, n_qubits, to)
        rotations = [(c, g) for c, g in gates if g.name in _matrices.GENERATORS]
        self.columns = _index([column for column, _ in rotations], to)
        # s_g: the ±1 eigenvalue of each rotation's Pauli-Z string on every basis state.
        signs = [full_diagonal(np.diag(_matrices.GENERATORS[g.name]), g.wires, n_qubits).real
                 for _, g in rotations]
        real = torch.empty((), dtype=to["dtype"]).real.dtype
        self.signs = torch.as_tensor(np.array(signs).reshape(-1, 2**n_qubits), dtype=real,
                                     device=to["device"])  # (G_run, D)
        fixed = np.ones(2**n_qubits, dtype=np.complex128)
        for _, gate in gates:
            if gate.name in _matrices.FIXED:
                diagonal = np.diag(_matrices.FIXED[gate.name])
                fixed = fixed * full_diagonal(diagonal, gate.wires, n_qubits)
        self.fixed = torch.as_tensor(fixed, **to)  # (D,)
        self.kernels = (DiagonalKernel(),)

    def params(self, half, cs):
        angle = half[:, self.columns] @ self.signs  # (B, G_run) @ (G_run, D) -> (B, D)
        return torch.polar(torch.ones_like(angle), -angle) * self.fixed


class PermutationBlock(Block):
    """Permutation gates: one gather with the composed index."""

    def __init__(self, gates: list[tuple[int, Gate]], n_qubits: int, to: dict) -> None:
        super().__init__(gates, n_qubits, to)
        # Applying the gates to the vector of basis indices gives, at i, the source of ψ_out[i].
        index = np.arange(2**n_qubits, dtype=np.complex128).reshape((2,) * n_qubits)
        for _, gate in gates:
            index = apply_matrix(index, _matrices.FIXED[gate.name], gate.wires)
        index = index.real.round().astype(np.int64).reshape(-1)
        self.kernels = (PermutationKernel(torch.as_tensor(index, device=to["device"])),)

    def params(self, half, cs):
        return None


class GateBlock(Block):
    """One gate on its own wires: the gate-by-gate path."""

    def __init__(self, gates: list[tuple[int, Gate]], n_qubits: int, to: dict) -> None:
        super().__init__(gates, n_qubits, to)
        ((_, gate),) = gates
        self.basis = torch.as_tensor(gate_basis(gate)[None], **to)  # (1, 2, 4^k)
        self.kernels = (GateKernel(gate.wires, n_qubits),)

    def params(self, half, cs):
        return gate_matrices(cs[:, self.columns], self.basis)[:, 0]  # (B, 2^k, 2^k)


_BLOCKS = {
    "local": LocalBlock,
    "diagonal": DiagonalBlock,
    "permutation": PermutationBlock,
    "gate": GateBlock,
}


def runs(gates: tuple[Gate, ...], fused: bool) -> list[tuple[str, list[int]]]:
    """Cut the gates into maximal runs that one block applies: (kind, gate indices) in order.

    Single-qubit diagonal gates join a run of single-qubit gates, and a run of them becomes one
    when a non-diagonal single-qubit gate follows. Without fusion every gate is its own run.
    """
    if not fused:
        return [("gate", [i]) for i in range(len(gates))]
    out: list[tuple[str, list[int]]] = []
    for i, gate in enumerate(gates):
        kind = gate_kind(gate.name)
        single = len(gate.wires) == 1
        if out and kind != "gate":
            last, members = out[-1]
            if kind == last or (last == "local" and kind == "diagonal" and single):
                members.append(i)
                continue
            if (last == "diagonal" and kind == "local"
                    and all(len(gates[j].wires) == 1 for j in members)):
                out[-1] = ("local", [*members, i])
                continue
        out.append((kind, [i]))
    return out


class Plan:
    """A circuit compiled to blocks and kernels for one dtype and device.

    Args:
        circuit: the per-step circuit.
        fused: fuse runs of gates (else one kernel per gate).
        dtype: complex dtype of the state.
        device: torch device of states and tables.
    """

    def __init__(self, circuit: Circuit, *, fused: bool, dtype: torch.dtype,
                 device: torch.device) -> None:
        to = {"dtype": dtype, "device": device}
        real = torch.empty((), dtype=dtype).real.dtype
        gates = circuit.gates
        # Half-angles of every gate and an identity, (B, G + 1) = θ (B, P) @ select (P, G + 1)
        # + constant (G + 1,); fixed gates and the identity keep 0.
        select = np.zeros((circuit.n_params, len(gates) + 1))
        constant = np.zeros(len(gates) + 1)
        for column, gate in enumerate(gates):
            if gate.slot is not None:
                select[gate.slot, column] = 0.5
            elif gate.angle is not None:
                constant[column] = gate.angle / 2
        self.select = torch.as_tensor(select, dtype=real, device=device)
        self.constant = torch.as_tensor(constant, dtype=real, device=device)
        self.dtype = dtype
        self.blocks = [_BLOCKS[kind]([(i, gates[i]) for i in members], circuit.n_qubits, to)
                       for kind, members in runs(gates, fused)]
        # Kernel parameters of the blocks that no θ drives are computed once, here.
        half, cs = self._angles(torch.zeros(1, circuit.n_params, dtype=real, device=device))
        self._fixed = [None if block.trainable else block.expand(block.params(half, cs))
                       for block in self.blocks]

    def _angles(self, thetas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        half = torch.addmm(self.constant, thetas, self.select)  # (B, G + 1)
        cs = torch.stack((half.cos(), half.sin()), -1).to(self.dtype)  # (B, G + 1, 2)
        return half, cs

    def params(self, thetas: torch.Tensor) -> list[torch.Tensor | None]:
        """Each block's parameter for (B, P) angles (None for blocks no θ drives)."""
        half, cs = self._angles(thetas)
        return [None if fixed is not None else block.params(half, cs)
                for block, fixed in zip(self.blocks, self._fixed, strict=True)]

    def _kernel_params(self, index: int, param: torch.Tensor | None) -> list:
        fixed = self._fixed[index]
        return fixed if fixed is not None else self.blocks[index].expand(param)

    def run(self, state: torch.Tensor, thetas: torch.Tensor, adjoint: bool = False):
        """U(θ) ψ, or U(θ)† ψ with ``adjoint``, for a (B, D) state and (B, P) angles."""
        steps = []
        for index, (block, param) in enumerate(zip(self.blocks, self.params(thetas), strict=True)):
            steps.extend(zip(block.kernels, self._kernel_params(index, param), strict=True))
        if adjoint:
            for kernel, param in reversed(steps):
                state = kernel.apply_adjoint(state, param)
            return state
        for kernel, param in steps:
            state = kernel.apply(state, param)
        return state

    def backward(self, state: torch.Tensor, grad: torch.Tensor, thetas: torch.Tensor,
                 need_thetas: bool = True):
        """The adjoint method for one step, with no stored intermediate state.

        From ψ_out = U(θ)ψ_in and λ_out = dL/dψ_out, walks the kernels backwards: each takes ψ
        and λ back through U_k† and gives its cotangent; each block turns its kernels'
        cotangents into dL/d(its parameter), and autograd takes those to θ.

        Args:
            state: ψ_out, (B, D).
            grad: λ_out, (B, D).
            thetas: θ of the step, (B, P).
            need_thetas: compute dL/dθ (else it is None).

        Returns:
            (ψ_in, dL/dψ_in, dL/dθ or None).
        """
        with torch.enable_grad():
            leaf = thetas.detach().requires_grad_(need_thetas)
            params = self.params(leaf)
        outputs, cotangents = [], []
        for index in reversed(range(len(self.blocks))):
            block, param = self.blocks[index], params[index]
            value = None if param is None else param.detach()
            wanted = need_thetas and param is not None and param.requires_grad
            kernel_cotangents = []
            kernel_params = self._kernel_params(index, value)
            for kernel, kernel_param in zip(block.kernels[::-1], kernel_params[::-1], strict=True):
                before = kernel.apply_adjoint(state, kernel_param)
                if wanted:
                    kernel_cotangents.append(kernel.cotangent(grad, state, before, kernel_param))
                state, grad = before, kernel.apply_adjoint(grad, kernel_param)
            if wanted:
                outputs.append(param)
                cotangents.append(block.cotangent(value, kernel_cotangents[::-1]))
        grad_thetas = None
        if need_thetas:
            grad_thetas = torch.zeros_like(leaf)
            if outputs:
                (grad_thetas,) = torch.autograd.grad(outputs, leaf, cotangents)
        return state, grad, grad_thetas
