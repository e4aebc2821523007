"""The qrnn error hierarchy: every error the library raises on purpose is a ``QRNNError``.

Messages say what was expected and what was got, so a user can fix the call without reading code.
"""

from __future__ import annotations


class QRNNError(Exception):
    """Base class of all qrnn errors."""


class IRError(QRNNError, ValueError):
    """A gate, circuit, readout or cell is malformed (raised at construction or deserialisation)."""


class InvalidInputError(QRNNError, ValueError):
    """A tensor handed to a backend program has the wrong shape, dtype or values."""


class UnknownBackendError(QRNNError, KeyError):
    """No backend is registered under the requested name."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0]) if self.args else ""


class BackendUnavailableError(QRNNError, ImportError):
    """A registered backend cannot run here, usually because an optional dependency is missing."""


class UnsupportedCellError(QRNNError, ValueError):
    """A backend cannot run a cell: an unsupported gate, too many qubits, ..."""


class UnsupportedGateError(UnsupportedCellError):
    """A cell uses a gate the backend does not implement."""


class NotDifferentiableError(QRNNError, RuntimeError):
    """Gradients were requested from a backend that cannot provide them."""


class PluginError(QRNNError):
    """A plugin broke the registration contract (duplicate name, bad class, failing hook)."""
