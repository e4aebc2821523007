"""``KEY=VALUE`` command-line options, shared by ``qrnn`` and the conformance suite."""

from __future__ import annotations

import json
from collections.abc import Iterable

from qrnn.errors import QRNNError


def parse_assignments(items: Iterable[str], flag: str) -> dict:
    """``["shots=100", "dtype=complex128"]`` -> ``{"shots": 100, "dtype": "complex128"}``.

    VALUE is read as JSON when it parses (numbers, booleans, lists), else kept as a string.

    Raises:
        QRNNError: an item is not ``KEY=VALUE``; the message names ``flag``.
    """
    values = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise QRNNError(f"{flag} must look like KEY=VALUE (got {item!r})")
        try:
            values[key] = json.loads(value)
        except json.JSONDecodeError:
            values[key] = value
    return values
