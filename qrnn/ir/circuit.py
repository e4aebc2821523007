"""The per-step circuit U(θ_t): an ordered list of gates on n qubits with P angle slots."""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from qrnn.errors import IRError
from qrnn.ir import _json
from qrnn.ir.gates import GATE_SPECS, Gate

ENTANGLERS = ("ring", "ladder", "none")


def _gates_converter(gates) -> tuple[Gate, ...]:
    return tuple(gates)


@attrs.frozen
class Circuit:
    """One recurrent step U(θ_t) on ``n_qubits`` wires.

    ``n_params`` is P, the number of angles the controller emits per step. It defaults to one
    more than the largest slot used; given explicitly, every slot must be below it.
    """

    n_qubits: int = attrs.field()
    """Number of qubits n; the state has D = 2**n amplitudes."""
    gates: tuple[Gate, ...] = attrs.field(converter=_gates_converter)
    """Gates in the order they are applied."""
    n_params: int = attrs.field()
    """P: the length of θ_t."""

    @n_params.default
    def _default_n_params(self) -> int:
        slots = [g.slot for g in self.gates if isinstance(g, Gate) and g.slot is not None]
        return max(slots) + 1 if slots else 0

    @n_qubits.validator
    def _check_n_qubits(self, _attribute, n_qubits) -> None:
        if not isinstance(n_qubits, int) or isinstance(n_qubits, bool) or n_qubits < 1:
            raise IRError(f"'n_qubits' must be a positive int (got {n_qubits!r})")

    @gates.validator
    def _check_gates(self, _attribute, gates) -> None:
        for index, gate in enumerate(gates):
            if not isinstance(gate, Gate):
                raise IRError(f"'gates[{index}]' must be a Gate (got {gate!r})")
            if max(gate.wires) >= self.n_qubits:
                raise IRError(
                    f"'gates[{index}]' ({gate.name} on wires {gate.wires}) uses a wire out of "
                    f"range: expected wires in 0..{self.n_qubits - 1} for n_qubits={self.n_qubits}"
                )

    @n_params.validator
    def _check_n_params(self, _attribute, n_params) -> None:
        if not isinstance(n_params, int) or isinstance(n_params, bool) or n_params < 0:
            raise IRError(f"'n_params' must be a non-negative int (got {n_params!r})")
        for index, gate in enumerate(self.gates):
            if gate.slot is not None and gate.slot >= n_params:
                raise IRError(
                    f"'gates[{index}]' ({gate.name}) uses slot {gate.slot}, out of range for "
                    f"n_params={n_params} (expected 0..{n_params - 1})"
                )

    @property
    def gate_names(self) -> frozenset[str]:
        return frozenset(g.name for g in self.gates)

    # -- named constructors -------------------------------------------------------------------

    @classmethod
    def hardware_efficient(
        cls,
        n_qubits: int,
        n_layers: int = 2,
        rotations: Sequence[str] = ("ry", "rz"),
        entangler: str = "ring",
        entangling_gate: str = "cx",
    ) -> Circuit:
        """The default recurrent ansatz: L layers of (one rotation per qubit per entry of
        ``rotations``, then a ring or ladder of two-qubit gates). P = len(rotations)·n·L.

        Args:
            n_qubits: n.
            n_layers: L.
            rotations: single-qubit rotation gates applied to every qubit, in order.
            entangler: ``"ring"`` (i → i+1 and n-1 → 0), ``"ladder"`` (no wrap-around) or
                ``"none"``.
            entangling_gate: a fixed two-qubit gate such as ``"cx"`` or ``"cz"``.
        """
        if not isinstance(n_layers, int) or n_layers < 1:
            raise IRError(f"'n_layers' must be a positive int (got {n_layers!r})")
        for name in rotations:
            if name not in GATE_SPECS or GATE_SPECS[name] != (1, True):
                raise IRError(f"'rotations' must be single-qubit rotations (got {name!r})")
        if entangler not in ENTANGLERS:
            raise IRError(f"'entangler' must be one of {ENTANGLERS} (got {entangler!r})")
        if entangling_gate not in GATE_SPECS or GATE_SPECS[entangling_gate] != (2, False):
            raise IRError(
                f"'entangling_gate' must be a fixed two-qubit gate (got {entangling_gate!r})"
            )
        pairs = [(i, i + 1) for i in range(n_qubits - 1)]
        if entangler == "ring" and n_qubits > 2:
            pairs.append((n_qubits - 1, 0))
        if entangler == "none":
            pairs = []
        gates: list[Gate] = []
        slot = 0
        for _ in range(n_layers):
            for name in rotations:
                for wire in range(n_qubits):
                    gates.append(Gate(name, (wire,), slot=slot))
                    slot += 1
            gates.extend(Gate(entangling_gate, pair) for pair in pairs)
        return cls(n_qubits, gates)

    # -- JSON ---------------------------------------------------------------------------------

    def to_dict(self) -> dict:
        return {
            "n_qubits": self.n_qubits,
            "n_params": self.n_params,
            "gates": [g.to_dict() for g in self.gates],
        }

    @classmethod
    def from_dict(cls, data, path: str = "circuit") -> Circuit:
        _json.read_object(data, path, {"n_qubits", "n_params", "gates"})
        gates = []
        for i, item in enumerate(_json.read_list(data["gates"], f"{path}.gates")):
            item_path = f"{path}.gates[{i}]"
            _json.read_object(item, item_path, {"name", "wires"}, frozenset({"slot", "angle"}))
            gates.append(_json.build(item_path, Gate, **item))
        return _json.build(path, cls, data["n_qubits"], gates, data["n_params"])
