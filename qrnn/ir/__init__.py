"""The circuit IR: pure data describing the recurrent ansatz and its readouts (no numerics)."""

from qrnn.ir.cell import FORMAT_VERSION, Cell
from qrnn.ir.circuit import ENTANGLERS, Circuit
from qrnn.ir.gates import GATE_SPECS, Gate, GateSpec
from qrnn.ir.qasm import to_qasm3
from qrnn.ir.readout import PauliTerm, Readouts

__all__ = [
    "ENTANGLERS",
    "FORMAT_VERSION",
    "GATE_SPECS",
    "Cell",
    "Circuit",
    "Gate",
    "GateSpec",
    "PauliTerm",
    "Readouts",
    "to_qasm3",
]
