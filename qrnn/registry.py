"""The backend registry and selection by name: ``get_backend``, ``list_backends``."""

from __future__ import annotations

import os
from typing import Any

import attrs

from qrnn.backends.base import API_VERSION, Backend
from qrnn.errors import BackendUnavailableError, PluginError, UnknownBackendError

DEFAULT_BACKEND = "torch.statevector"


@attrs.frozen
class BrokenPlugin:
    """A plugin that failed to import or to register; reported, never fatal."""

    plugin: str
    error: str


@attrs.define
class BackendRegistry:
    """Backend classes by name, with the plugin that registered each (tox-style typed registry)."""

    classes: dict[str, type[Backend]] = attrs.field(factory=dict)
    owners: dict[str, str] = attrs.field(factory=dict)
    broken: list[BrokenPlugin] = attrs.field(factory=list)

    def add(self, cls: type[Backend], plugin: str = "<direct>") -> None:
        """Register a backend class; the ``register`` callback of the plugin hook."""
        if not (isinstance(cls, type) and issubclass(cls, Backend)):
            raise PluginError(
                f"plugin {plugin!r} registered {cls!r}, which is not a qrnn Backend subclass"
            )
        if cls.api_version != API_VERSION:
            raise PluginError(
                f"plugin {plugin!r}: backend {cls.name!r} implements contract version "
                f"{cls.api_version}, this qrnn speaks version {API_VERSION}"
            )
        if cls.name in self.classes and self.classes[cls.name] is not cls:
            raise PluginError(
                f"backend name {cls.name!r} is registered twice: by plugin "
                f"{self.owners[cls.name]!r} and by plugin {plugin!r}"
            )
        self.classes[cls.name] = cls
        self.owners[cls.name] = plugin

    def remove(self, name: str) -> None:
        self.classes.pop(name, None)
        self.owners.pop(name, None)

    def lookup(self, name: str) -> type[Backend]:
        try:
            return self.classes[name]
        except KeyError:
            available = ", ".join(sorted(self.classes)) or "(none)"
            hint = ""
            if self.broken:
                hint = " Broken plugins: " + "; ".join(
                    f"{b.plugin}: {b.error}" for b in self.broken
                )
            raise UnknownBackendError(
                f"unknown backend {name!r}; available: {available}. Is the plugin that provides "
                f"it installed (pip install qrnn-<name>)?{hint}"
            ) from None


REGISTRY = BackendRegistry()


def _registry() -> BackendRegistry:
    from qrnn.plugins import load_plugins

    load_plugins()
    return REGISTRY


def get_backend(name: str | None = None, **options: Any) -> Backend:
    """Construct the backend registered as ``name`` with ``options``.

    Args:
        name: e.g. ``"torch.statevector"``; defaults to ``$QRNN_BACKEND``, else
            ``"torch.statevector"``.
        **options: backend options, e.g. ``shots=4096, seed=1`` or ``dtype="complex128"``.

    Raises:
        UnknownBackendError: no backend has that name (the message lists those that do).
        BackendUnavailableError: a dependency is missing (the message says what to install).
    """
    name = name or os.environ.get("QRNN_BACKEND") or DEFAULT_BACKEND
    cls = _registry().lookup(name)
    cls.check_available()
    return cls(**options)


def list_backends(available: bool = False) -> list[str]:
    """Names of the registered backends, sorted; ``available=True`` keeps those that can run."""
    names = sorted(_registry().classes)
    if available:
        names = [n for n in names if unavailable_reason(n) is None]
    return names


def unavailable_reason(name: str) -> str | None:
    """Why backend ``name`` cannot run here, or None if it can."""
    try:
        _registry().lookup(name).check_available()
    except BackendUnavailableError as error:
        return str(error)
    return None


def broken_plugins() -> list[BrokenPlugin]:
    """Plugins that failed to import or register."""
    return list(_registry().broken)
