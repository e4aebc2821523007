"""Plugin loading: one pluggy manager, built-ins first, then entry points of group ``qrnn``.

Set ``QRNN_LOAD_PLUGINS`` to a comma-separated list of entry-point names to load only those
(``""`` loads none, leaving the built-ins). A plugin that fails to import or register is logged
and listed by :func:`qrnn.registry.broken_plugins`; it never breaks ``import qrnn``.
"""

from __future__ import annotations

import importlib
import logging
import os
from importlib.metadata import entry_points

import pluggy

from qrnn import hookspecs
from qrnn.registry import REGISTRY, BrokenPlugin

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "qrnn"
DEFAULT_PLUGINS = (
    "qrnn.backends.numpy_sv",
    "qrnn.backends.torch_sv",
    "qrnn.backends.qiskit_aer",
    "qrnn.backends.pennylane_device",
    "qrnn.backends.tensornetwork_mps",
)

pm = pluggy.PluginManager("qrnn")
pm.add_hookspecs(hookspecs)
_loaded = False


def _report(plugin: str, error: BaseException) -> None:
    message = f"{type(error).__name__}: {error}"
    logger.warning("qrnn plugin %r is broken and was skipped: %s", plugin, message)
    REGISTRY.broken.append(BrokenPlugin(plugin, message))


def _entry_point_modules():
    allowed = os.environ.get("QRNN_LOAD_PLUGINS")
    allowed_names = (
        None if allowed is None else {n.strip() for n in allowed.split(",") if n.strip()}
    )
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if allowed_names is not None and ep.name not in allowed_names:
            continue
        if pm.has_plugin(ep.name):
            continue
        try:
            yield ep.name, ep.load()
        except Exception as error:  # a third-party import error must not break qrnn
            _report(ep.name, error)


def register_plugin(module, name: str) -> None:
    """Register one plugin module (or object) and run its ``register_backends`` hook."""
    pm.register(module, name=name)
    for impl in pm.hook.register_backends.get_hookimpls():
        if impl.plugin is module:
            try:
                impl.function(register=lambda cls: REGISTRY.add(cls, plugin=name))
            except Exception as error:
                _report(name, error)


def unregister_plugin(name: str) -> None:
    """Undo :func:`register_plugin`: remove the plugin and the backends it registered."""
    for backend_name, owner in list(REGISTRY.owners.items()):
        if owner == name:
            REGISTRY.remove(backend_name)
    if pm.has_plugin(name):
        pm.unregister(name=name)


def load_plugins() -> None:
    """Load built-in and installed plugins once; later calls return at once."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module_name in DEFAULT_PLUGINS:
        register_plugin(importlib.import_module(module_name), name=module_name)
    for name, module in _entry_point_modules():
        register_plugin(module, name=name)
    pm.check_pending()
