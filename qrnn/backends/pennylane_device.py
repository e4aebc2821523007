"""``pennylane.*``: PennyLane devices as qrnn backends.

Every step runs the cell's circuit as a PennyLane QNode on the device: ``qml.StatePrep`` loads
the B incoming states (a batched state preparation), the gates follow with their angles
broadcast over the batch (PennyLane's parameter broadcasting), and ``qml.state()`` hands the
(B, 2**n) states to the next step. Readouts are a second QNode that prepares the state and
measures ``qml.expval`` of each Pauli string. PennyLane, like qrnn, makes wire 0 the most
significant bit, so states pass between the two unchanged.

Built in: ``pennylane.default.qubit`` (differentiable: torch backprop through the state
preparation and the gates) and ``pennylane.lightning.qubit`` (forward only). Any other
statevector device gets a backend class from :func:`pennylane_backend`.

Forward-only devices run with PennyLane's numpy interface in complex128: through its torch
interface ``lightning.qubit`` returns float32 unless torch's default dtype is float64, which
would cost the exactness the conformance suite demands. Finite-shot readouts are sampled by
qrnn from the exact expectations (``shots=N``), the same way for every backend.
"""

from __future__ import annotations

import abc
import importlib.util
import math
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any

import numpy as np
import torch

from qrnn.backends.base import Backend, Program
from qrnn.backends.capabilities import Capabilities
from qrnn.errors import BackendUnavailableError, QRNNError
from qrnn.hookspecs import hookimpl
from qrnn.ir import Cell

_INSTALL_HINT = "pip install 'qrnn[pennylane]'"
#: Device options that qrnn sets itself.
_RESERVED_OPTIONS = {"wires": "qrnn sets the wires from the cell", "shots": "pass shots=N to qrnn"}
#: qrnn gate name -> PennyLane operation name (same matrices; IsingXX(φ) = exp(-iφ X⊗X/2)).
_OPERATIONS = {
    "rx": "RX",
    "ry": "RY",
    "rz": "RZ",
    "rxx": "IsingXX",
    "ryy": "IsingYY",
    "rzz": "IsingZZ",
    "h": "Hadamard",
    "x": "PauliX",
    "y": "PauliY",
    "z": "PauliZ",
    "s": "S",
    "t": "T",
    "cx": "CNOT",
    "cz": "CZ",
    "swap": "SWAP",
}
_PAULIS = {"X": "PauliX", "Y": "PauliY", "Z": "PauliZ"}
#: Every IR gate: ``sdg`` runs as PhaseShift(-π/2) = diag(1, -i).
GATES = frozenset(_OPERATIONS) | {"sdg"}


class PennyLaneProgram(Program):
    """State: a (B, 2**n) complex128 torch tensor, wire 0 the most significant bit."""

    def __init__(self, backend: PennyLaneBackend, cell: Cell) -> None:
        super().__init__(backend, cell)
        qml = self._qml = backend.qml
        self.device = backend.make_device(cell.n_qubits)
        self._wires = list(range(cell.n_qubits))
        self._differentiable = backend.capabilities.differentiable
        interface, diff_method = ("torch", "backprop") if self._differentiable else ("numpy", None)
        self._evolve = qml.QNode(self._evolve_circuit, self.device, interface=interface,
                                 diff_method=diff_method)
        self._measure = qml.QNode(self._measure_circuit, self.device, interface=interface,
                                  diff_method=diff_method)

    def _evolve_circuit(self, state, thetas):
        """state (B, D), thetas (B, P): every angle is a length-B batch, so PennyLane broadcasts."""
        qml = self._qml
        qml.StatePrep(state, wires=self._wires)
        for gate in self.cell.circuit.gates:
            if gate.name == "sdg":
                qml.PhaseShift(-math.pi / 2, wires=gate.wires)
                continue
            operation = getattr(qml, _OPERATIONS[gate.name])
            if gate.slot is not None:
                operation(thetas[:, gate.slot], wires=gate.wires)
            elif gate.angle is not None:
                operation(gate.angle, wires=gate.wires)
            else:
                operation(wires=gate.wires)
        return qml.state()

    def _measure_circuit(self, state):
        qml = self._qml
        qml.StatePrep(state, wires=self._wires)
        return [
            qml.expval(qml.prod(*(getattr(qml, _PAULIS[p])(w) for p, w in zip(
                term.paulis, term.wires, strict=True))))
            for term in self.cell.readouts
        ]

    def _inputs(self, *tensors: torch.Tensor):
        """Torch tensors as the QNode's interface wants them: as they are, or numpy."""
        if self._differentiable:
            return tensors
        return tuple(t.detach().cpu().numpy() for t in tensors)

    def init_state(self, batch_size: int) -> torch.Tensor:
        state = torch.zeros(batch_size, 2**self.cell.n_qubits, dtype=torch.complex128)
        state[:, 0] = 1
        return state

    def evolve(self, state: torch.Tensor, thetas: torch.Tensor) -> torch.Tensor:
        # complex128 whatever precision device options chose, so states keep one dtype
        return torch.as_tensor(self._evolve(*self._inputs(state, thetas))).to(torch.complex128)

    def expectations(self, state: torch.Tensor) -> torch.Tensor:
        values = self._measure(*self._inputs(state))  # K arrays (B,)
        if self._differentiable:
            return torch.stack(values, dim=1).to(torch.float64)
        return torch.from_numpy(np.stack(values, axis=1)).to(torch.float64)

    def statevector(self, state: torch.Tensor) -> torch.Tensor:
        return state


class PennyLaneBackend(Backend):
    """A PennyLane statevector device as a backend; subclasses name the device.

    Args:
        device_options: keyword arguments for ``qml.device`` besides the wires (e.g. ``seed``,
            or ``max_workers`` of ``default.qubit``); ``wires`` and ``shots`` are qrnn's to set.
        shots, seed: see :class:`Backend`.
    """

    def __init__(
        self,
        *,
        device_options: Mapping[str, Any] | None = None,
        shots: int | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__(shots=shots, seed=seed)
        device_options = dict(device_options or {})
        for key, why in _RESERVED_OPTIONS.items():
            if key in device_options:
                raise QRNNError(f"'device_options' must not set {key!r}: {why}")
        self.device_options = device_options
        self.qml = _import_pennylane(self.name)
        self.make_device(1)  # let the device judge its options now, not at the first prepare

    def make_device(self, n_wires: int) -> Any:
        """The PennyLane device on ``n_wires`` wires with this backend's ``device_options``."""
        try:
            return self.qml.device(self.device_name, wires=n_wires, **self.device_options)
        except (TypeError, ValueError) as error:
            raise QRNNError(
                f"PennyLane device {self.device_name!r} rejected device_options "
                f"{self.device_options!r}: {error}"
            ) from None

    @property
    @abc.abstractmethod
    def device_name(self) -> str:
        """The PennyLane device name, e.g. ``"default.qubit"`` (a class attribute)."""

    @classmethod
    def check_available(cls) -> None:
        if importlib.util.find_spec("pennylane") is None:
            raise BackendUnavailableError(
                f"backend {cls.name!r} needs the 'pennylane' package: {_INSTALL_HINT}"
            )
        devices = {ep.name for ep in entry_points(group="pennylane.plugins")}
        if cls.device_name not in devices:
            raise BackendUnavailableError(
                f"backend {cls.name!r} needs the PennyLane device {cls.device_name!r}, which is "
                f"not installed (installed: {', '.join(sorted(devices)) or 'none'}); "
                f"{_INSTALL_HINT} brings default.qubit and lightning.qubit"
            )

    @property
    def tolerance(self) -> float:
        return 1e-9

    def compile(self, cell: Cell) -> PennyLaneProgram:
        return PennyLaneProgram(self, cell)


class DefaultQubitBackend(PennyLaneBackend):
    """``default.qubit``: differentiable by torch backprop, batched by parameter broadcasting."""

    name = "pennylane.default.qubit"
    device_name = "default.qubit"
    capabilities = Capabilities(gates=GATES, differentiable=True, statevector=True)


class LightningQubitBackend(PennyLaneBackend):
    """``lightning.qubit``: PennyLane's C++ simulator, forward only (no backprop)."""

    name = "pennylane.lightning.qubit"
    device_name = "lightning.qubit"
    capabilities = Capabilities(gates=GATES, differentiable=False, statevector=True)


def pennylane_backend(device_name: str, *, differentiable: bool = False) -> type[PennyLaneBackend]:
    """A backend class ``pennylane.<device_name>`` for any PennyLane statevector device.

    Register it from a plugin (``register(pennylane_backend("lightning.gpu"))``).

    Args:
        device_name: the name ``qml.device`` takes.
        differentiable: True only for devices that support ``diff_method="backprop"`` through
            a state preparation (gradients w.r.t. the incoming state are part of the contract).
    """
    capabilities = Capabilities(gates=GATES, differentiable=differentiable, statevector=True)
    return type(
        f"PennyLane[{device_name}]Backend",
        (PennyLaneBackend,),
        {
            "name": f"pennylane.{device_name}",
            "device_name": device_name,
            "capabilities": capabilities,
            "__module__": __name__,
            "__doc__": f"PennyLane device {device_name!r}.",
        },
    )


def _import_pennylane(name: str) -> Any:
    try:
        import pennylane
    except ImportError as error:
        raise BackendUnavailableError(
            f"backend {name!r} needs the 'pennylane' package ({error}): {_INSTALL_HINT}"
        ) from None
    return pennylane


@hookimpl
def register_backends(register):
    register(DefaultQubitBackend)
    register(LightningQubitBackend)
