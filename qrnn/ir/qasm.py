"""OpenQASM 3 export of one recurrent step U(θ_t) with the angles bound to numbers."""

from __future__ import annotations

import math
from collections.abc import Sequence

from qrnn.errors import IRError
from qrnn.ir.circuit import Circuit

# stdgates.inc has no two-qubit Pauli rotations; these definitions equal exp(-iθ P⊗P / 2).
_EXTRA_GATE_DEFINITIONS = {
    "rzz": "gate rzz(theta) a, b { cx a, b; rz(theta) b; cx a, b; }",
    "rxx": "gate rxx(theta) a, b { h a; h b; cx a, b; rz(theta) b; cx a, b; h a; h b; }",
    "ryy": (
        "gate ryy(theta) a, b { rx(pi/2) a; rx(pi/2) b; cx a, b; rz(theta) b; cx a, b; "
        "rx(-pi/2) a; rx(-pi/2) b; }"
    ),
}


def to_qasm3(circuit: Circuit, thetas: Sequence[float] | None = None) -> str:
    """Return an OpenQASM 3 program for one step of ``circuit`` with θ_t = ``thetas``.

    Args:
        circuit: the per-step circuit.
        thetas: P numbers (a list, array or 1-D tensor); may be omitted when P = 0.

    Raises:
        IRError: if ``thetas`` has the wrong length or a non-finite entry.
    """
    values = [] if thetas is None else [float(v) for v in thetas]
    if len(values) != circuit.n_params:
        raise IRError(f"'thetas' must have {circuit.n_params} entries (got {len(values)})")
    if not all(math.isfinite(v) for v in values):
        raise IRError(f"'thetas' must be finite (got {values})")
    lines = ["OPENQASM 3.0;", 'include "stdgates.inc";']
    lines += [
        _EXTRA_GATE_DEFINITIONS[n]
        for n in sorted(circuit.gate_names & _EXTRA_GATE_DEFINITIONS.keys())
    ]
    lines.append(f"qubit[{circuit.n_qubits}] q;")
    for gate in circuit.gates:
        wires = ", ".join(f"q[{w}]" for w in gate.wires)
        if gate.parametrized:
            angle = values[gate.slot] if gate.slot is not None else gate.angle
            lines.append(f"{gate.name}({angle!r}) {wires};")
        else:
            lines.append(f"{gate.name} {wires};")
    return "\n".join(lines) + "\n"
