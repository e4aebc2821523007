"""The backend conformance suite, shipped with qrnn so any backend can run it against itself.

Run it on an installed backend with ``qrnn-backend-test --backend NAME`` (pass backend options
with ``--option key=value``); qrnn's own test run covers every installed backend. Every check
compares with the complex128 ``numpy.statevector`` reference.
"""

from qrnn.testing.cells import random_cell, random_thetas

__all__ = ["random_cell", "random_thetas"]
