"""Backends: the contract, capabilities, and the built-in statevector simulators."""

from qrnn.backends.base import API_VERSION, Backend, Program
from qrnn.backends.capabilities import Capabilities

__all__ = ["API_VERSION", "Backend", "Capabilities", "Program"]
