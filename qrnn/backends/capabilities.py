"""What a backend can do, declared as data so the core can check a request before running it."""

from __future__ import annotations

import attrs


def _frozenset(values) -> frozenset[str]:
    return frozenset(values)


@attrs.frozen
class Capabilities:
    """Declared abilities of a backend class.

    Example:
        ``Capabilities(gates=frozenset({"rx", "ry", "rz", "cx"}), differentiable=False)``
    """

    gates: frozenset[str] = attrs.field(converter=_frozenset)
    """Lowercase names of the gates the backend implements."""
    max_qubits: int | None = None
    """Largest n it accepts; None when only memory limits it."""
    differentiable: bool = False
    """Gradients of readouts w.r.t. θ and the incoming state flow through torch autograd."""
    exact: bool = True
    """It can return exact (non-sampled) expectation values."""
    shots: bool = True
    """It accepts ``shots=N`` for finite-shot readout estimates."""
    noise: bool = False
    """It can simulate a noise model."""
    devices: frozenset[str] = attrs.field(default=frozenset({"cpu"}), converter=_frozenset)
    """Torch device types its programs run on (``"cpu"``, ``"cuda"``)."""
    statevector: bool = False
    """Its programs expose the dense state through ``Program.statevector``."""

    def summary(self) -> str:
        """One line for listings such as ``qrnn backends``."""
        flags = [
            "differentiable" if self.differentiable else "forward-only",
            "exact" if self.exact else "sampled",
        ]
        if self.shots:
            flags.append("shots")
        if self.noise:
            flags.append("noise")
        qubits = f"max {self.max_qubits} qubits" if self.max_qubits else "any qubit count"
        return (
            f"{', '.join(flags)}; {qubits}; devices {','.join(sorted(self.devices))}; "
            f"gates {','.join(sorted(self.gates))}"
        )
