"""The plugin hooks. A plugin is a module, named by an entry point in group ``qrnn``, holding
``@qrnn.hookimpl`` functions; built-in backends register through the same hook."""

from __future__ import annotations

from pluggy import HookimplMarker, HookspecMarker

hookspec = HookspecMarker("qrnn")
#: Marker for plugin functions: ``@qrnn.hookimpl def register_backends(register): ...``
hookimpl = HookimplMarker("qrnn")


@hookspec
def register_backends(register):
    """Call ``register(BackendClass)`` once per backend the plugin provides.

    Must be cheap: import heavy dependencies in ``Backend.__init__`` (or
    ``Backend.check_available``), not at module level. Every implementation is called, each on its
    own, so one failing plugin does not hide the others.
    """
