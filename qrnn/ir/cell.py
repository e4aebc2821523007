"""The recurrent cell: the per-step circuit together with the readouts taken after each step."""

from __future__ import annotations

import json
from typing import Any

import attrs

from qrnn.errors import IRError
from qrnn.ir import _json
from qrnn.ir.circuit import Circuit
from qrnn.ir.readout import Readouts

#: Version of the plain-JSON form written by :meth:`Cell.to_dict`.
FORMAT_VERSION = 1


@attrs.frozen
class Cell:
    """What every backend runs: |ψ_t⟩ = U(θ_t)|ψ_{t-1}⟩, then z_t = ⟨ψ_t|P_k|ψ_t⟩ for each term.

    The initial state is |0…0⟩.

    Example:
        >>> cell = Cell(Circuit.hardware_efficient(4, n_layers=2), Readouts.xyz(4))
        >>> cell.n_params, cell.n_readouts
        (16, 12)
    """

    circuit: Circuit = attrs.field(validator=attrs.validators.instance_of(Circuit))
    """The per-step circuit U(θ_t)."""
    readouts: Readouts = attrs.field(validator=attrs.validators.instance_of(Readouts))
    """The K observables read after each step."""

    @readouts.validator
    def _check_readout_wires(self, _attribute, readouts) -> None:
        if readouts.max_wire >= self.circuit.n_qubits:
            raise IRError(
                f"'readouts' use wire {readouts.max_wire}, out of range for "
                f"n_qubits={self.circuit.n_qubits}"
            )

    @classmethod
    def default(
        cls, n_qubits: int, n_layers: int = 2, readouts: str = "xyz", **ansatz: Any
    ) -> Cell:
        """The paper-default cell: the hardware-efficient ansatz and a named readout set."""
        circuit = Circuit.hardware_efficient(n_qubits, n_layers, **ansatz)
        return cls(circuit, Readouts.named(readouts, n_qubits))

    @property
    def n_qubits(self) -> int:
        """n."""
        return self.circuit.n_qubits

    @property
    def n_params(self) -> int:
        """P, the number of angles per step."""
        return self.circuit.n_params

    @property
    def n_readouts(self) -> int:
        """K, the number of readouts per step."""
        return len(self.readouts)

    # -- JSON ---------------------------------------------------------------------------------

    def to_dict(self) -> dict:
        return {
            "format_version": FORMAT_VERSION,
            "circuit": self.circuit.to_dict(),
            "readouts": self.readouts.to_dict(),
        }

    @classmethod
    def from_dict(cls, data) -> Cell:
        """Rebuild a cell from :meth:`to_dict` output; malformed input raises :class:`IRError`."""
        _json.read_object(data, "cell", {"format_version", "circuit", "readouts"})
        if data["format_version"] != FORMAT_VERSION:
            raise IRError(
                f"cell.format_version must be {FORMAT_VERSION} (got {data['format_version']!r})"
            )
        circuit = Circuit.from_dict(data["circuit"], "cell.circuit")
        readouts = Readouts.from_dict(data["readouts"], "cell.readouts")
        return _json.build("cell", cls, circuit, readouts)

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_json(cls, text: str) -> Cell:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise IRError(f"cell JSON is not valid JSON: {error}") from None
        return cls.from_dict(data)
