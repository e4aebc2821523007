"""Readouts: the Pauli observables measured (without collapse) after every step.

``z_t = [⟨ψ_t| P_k |ψ_t⟩]_k`` for the K terms of a :class:`Readouts`. Named sets: ``z`` (K = n),
``xyz`` (K = 3n, the paper's "24 measurements for 8 qubits"), ``zz`` (neighbour Z⊗Z on a line,
K = n - 1), combined with ``+`` (``"xyz+zz"``).
"""

from __future__ import annotations

import attrs

from qrnn.errors import IRError
from qrnn.ir import _json
from qrnn.ir.gates import _wires_converter

PAULI_LETTERS = "XYZ"


@attrs.frozen
class PauliTerm:
    """A Pauli string on some wires, e.g. ``PauliTerm("ZZ", (0, 1))`` for Z⊗Z on wires 0 and 1."""

    paulis: str = attrs.field()
    """One letter of X, Y, Z per wire."""
    wires: tuple[int, ...] = attrs.field(converter=_wires_converter)
    """Distinct wires, in the order of ``paulis``."""

    @paulis.validator
    def _check_paulis(self, _attribute, paulis) -> None:
        if not isinstance(paulis, str) or not paulis:
            raise IRError(f"'paulis' must be a non-empty string of X, Y, Z (got {paulis!r})")
        bad = sorted(set(paulis) - set(PAULI_LETTERS))
        if bad:
            raise IRError(f"'paulis' must use only X, Y, Z (got {paulis!r} with {bad})")

    @wires.validator
    def _check_wires(self, _attribute, wires) -> None:
        if len(wires) != len(self.paulis):
            raise IRError(
                f"term {self.paulis!r} needs {len(self.paulis)} wire(s), got wires={wires!r}"
            )
        for wire in wires:
            if not isinstance(wire, int) or isinstance(wire, bool) or wire < 0:
                raise IRError(f"'wires' must be non-negative ints (got {wires!r})")
        if len(set(wires)) != len(wires):
            raise IRError(f"term {self.paulis!r} needs distinct wires, got wires={wires!r}")

    def label(self) -> str:
        """Readable name such as ``Z0`` or ``X1Y2``."""
        return "".join(f"{p}{w}" for p, w in zip(self.paulis, self.wires, strict=True))

    def to_dict(self) -> dict:
        return {"paulis": self.paulis, "wires": list(self.wires)}

    @classmethod
    def from_dict(cls, data, path: str = "term") -> PauliTerm:
        _json.read_object(data, path, {"paulis", "wires"})
        return _json.build(path, cls, data["paulis"], data["wires"])


def _terms_converter(terms) -> tuple[PauliTerm, ...]:
    return tuple(terms)


@attrs.frozen
class Readouts:
    """The ordered set of K Pauli terms read after every step."""

    terms: tuple[PauliTerm, ...] = attrs.field(converter=_terms_converter)

    @terms.validator
    def _check_terms(self, _attribute, terms) -> None:
        if not terms:
            raise IRError("'terms' must hold at least one PauliTerm (got an empty readout)")
        for term in terms:
            if not isinstance(term, PauliTerm):
                raise IRError(f"'terms' must hold PauliTerm objects (got {term!r})")

    def __len__(self) -> int:
        return len(self.terms)

    def __iter__(self):
        return iter(self.terms)

    @property
    def max_wire(self) -> int:
        return max(max(term.wires) for term in self.terms)

    def labels(self) -> list[str]:
        return [term.label() for term in self.terms]

    # -- named sets ---------------------------------------------------------------------------

    @classmethod
    def z(cls, n_qubits: int) -> Readouts:
        """⟨Z_i⟩ on every wire (K = n)."""
        return cls(PauliTerm("Z", (i,)) for i in range(n_qubits))

    @classmethod
    def xyz(cls, n_qubits: int) -> Readouts:
        """⟨X_i⟩, ⟨Y_i⟩, ⟨Z_i⟩ on every wire, grouped by wire (K = 3n)."""
        return cls(PauliTerm(p, (i,)) for i in range(n_qubits) for p in PAULI_LETTERS)

    @classmethod
    def zz(cls, n_qubits: int) -> Readouts:
        """⟨Z_i Z_{i+1}⟩ on neighbouring wires of a line (K = n - 1)."""
        if n_qubits < 2:
            raise IRError(f"'zz' readouts need at least 2 qubits (got n_qubits={n_qubits})")
        return cls(PauliTerm("ZZ", (i, i + 1)) for i in range(n_qubits - 1))

    @classmethod
    def named(cls, spec: str, n_qubits: int) -> Readouts:
        """Readouts from a name such as ``"xyz"`` or a ``+``-joined union such as ``"z+zz"``."""
        makers = {"z": cls.z, "xyz": cls.xyz, "zz": cls.zz}
        terms: list[PauliTerm] = []
        for part in spec.split("+"):
            if part not in makers:
                raise IRError(
                    f"unknown readout set {part!r} in {spec!r} (expected {sorted(makers)} "
                    "joined by '+')"
                )
            terms.extend(t for t in makers[part](n_qubits) if t not in terms)
        return cls(terms)

    def to_dict(self) -> list[dict]:
        return [term.to_dict() for term in self.terms]

    @classmethod
    def from_dict(cls, data, path: str = "readouts") -> Readouts:
        items = _json.read_list(data, path)
        terms = [PauliTerm.from_dict(item, f"{path}[{i}]") for i, item in enumerate(items)]
        return _json.build(path, cls, terms)
