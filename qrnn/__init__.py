"""qrnn: hybrid quantum-classical recurrent neural networks (after Xu, arXiv 2510.25557).

Select a backend by name, compile a cell, and step it::

    import qrnn
    backend = qrnn.get_backend("torch.statevector")
    program = backend.prepare(qrnn.Cell.default(n_qubits=4))
"""

from qrnn.backends import Backend, Capabilities, Program
from qrnn.errors import (
    BackendUnavailableError,
    InvalidInputError,
    IRError,
    NotDifferentiableError,
    PluginError,
    QRNNError,
    UnknownBackendError,
    UnsupportedCellError,
    UnsupportedGateError,
)
from qrnn.hookspecs import hookimpl
from qrnn.ir import Cell, Circuit, Gate, PauliTerm, Readouts, to_qasm3
from qrnn.registry import broken_plugins, get_backend, list_backends

__version__ = "0.1.0"

__all__ = [
    "Backend",
    "BackendUnavailableError",
    "Capabilities",
    "Cell",
    "Circuit",
    "Gate",
    "IRError",
    "InvalidInputError",
    "NotDifferentiableError",
    "PauliTerm",
    "PluginError",
    "Program",
    "QRNNError",
    "Readouts",
    "UnknownBackendError",
    "UnsupportedCellError",
    "UnsupportedGateError",
    "broken_plugins",
    "get_backend",
    "hookimpl",
    "list_backends",
    "to_qasm3",
]
