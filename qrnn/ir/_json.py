"""Strict reading of the IR's plain-JSON form: every error names the path of the bad field."""

from __future__ import annotations

from qrnn.errors import IRError


def read_object(data, path: str, required: set[str], optional: frozenset[str] = frozenset()):
    """Check that ``data`` is a dict with exactly the allowed keys and return it."""
    if not isinstance(data, dict):
        raise IRError(f"{path} must be an object (got {type(data).__name__}: {data!r:.80})")
    missing = required - data.keys()
    if missing:
        raise IRError(f"{path} is missing key(s) {sorted(missing)}")
    unknown = data.keys() - required - optional
    if unknown:
        raise IRError(
            f"{path} has unknown key(s) {sorted(unknown)} (expected {sorted(required | optional)})"
        )
    return data


def read_list(data, path: str) -> list:
    if not isinstance(data, list):
        raise IRError(f"{path} must be a list (got {type(data).__name__}: {data!r:.80})")
    return data


def build(path: str, factory, *args, **kwargs):
    """Call a node constructor and prefix any validation error with the JSON path."""
    try:
        return factory(*args, **kwargs)
    except IRError as error:
        raise IRError(f"{path}: {error}") from None
    except TypeError as error:  # wrong argument types that attrs converters reject
        raise IRError(f"{path}: {error}") from None
