"""Plugin registry: built-ins through the hook, temporary plugins, unknown, broken, duplicate."""

from __future__ import annotations

from importlib.metadata import EntryPoint
from types import SimpleNamespace

import pytest

import qrnn
from qrnn import plugins
from qrnn.backends.numpy_sv import NumpyStatevectorBackend
from qrnn.registry import REGISTRY


class EchoBackend(NumpyStatevectorBackend):
    name = "test.echo"


class MissingDependencyBackend(NumpyStatevectorBackend):
    name = "test.missing"

    @classmethod
    def check_available(cls):
        raise qrnn.BackendUnavailableError(
            "backend 'test.missing' needs somepackage: pip install 'qrnn[some]'"
        )


def _plugin(*classes):
    """A plugin module stand-in whose hook registers ``classes``."""

    @qrnn.hookimpl
    def register_backends(register):
        for cls in classes:
            register(cls)

    return SimpleNamespace(register_backends=register_backends)


@pytest.fixture
def temporary_plugin():
    names = []

    def add(name, *classes):
        plugins.register_plugin(_plugin(*classes), name=name)
        names.append(name)

    yield add
    for name in names:
        plugins.unregister_plugin(name)
    REGISTRY.broken.clear()


@pytest.fixture
def fresh_plugins(monkeypatch):
    """An empty plugin manager and registry for tests of loading itself; restored afterwards."""
    saved_plugins = plugins.pm.list_name_plugin()
    for name, _ in saved_plugins:
        plugins.pm.unregister(name=name)
    saved = (dict(REGISTRY.classes), dict(REGISTRY.owners), list(REGISTRY.broken))
    REGISTRY.classes.clear()
    REGISTRY.owners.clear()
    REGISTRY.broken.clear()
    monkeypatch.setattr(plugins, "_loaded", False)
    yield
    for name, _ in plugins.pm.list_name_plugin():
        plugins.pm.unregister(name=name)
    for name, plugin in saved_plugins:
        plugins.pm.register(plugin, name=name)
    REGISTRY.classes, REGISTRY.owners, REGISTRY.broken = saved


def test_builtins_registered_through_the_hook():
    names = qrnn.list_backends()
    assert {"numpy.statevector", "torch.statevector"} <= set(names)
    assert REGISTRY.owners["torch.statevector"] == "qrnn.backends.torch_sv"
    assert plugins.pm.has_plugin("qrnn.backends.torch_sv")


def test_default_backend_and_env(monkeypatch):
    monkeypatch.delenv("QRNN_BACKEND", raising=False)
    assert qrnn.get_backend().name == "torch.statevector"
    monkeypatch.setenv("QRNN_BACKEND", "numpy.statevector")
    assert qrnn.get_backend().name == "numpy.statevector"


def test_options_reach_the_backend():
    backend = qrnn.get_backend("torch.statevector", dtype="complex128", shots=100, seed=3)
    assert (backend.shots, backend.seed, str(backend.dtype)) == (100, 3, "torch.complex128")
    with pytest.raises(qrnn.QRNNError, match="'dtype' must be one of"):
        qrnn.get_backend("torch.statevector", dtype="float16")
    with pytest.raises(qrnn.QRNNError, match="'shots' must be a positive int"):
        qrnn.get_backend("torch.statevector", shots=0)


def test_unknown_name_lists_available():
    with pytest.raises(qrnn.UnknownBackendError) as info:
        qrnn.get_backend("torch.statevectr")
    message = str(info.value)
    assert "unknown backend 'torch.statevectr'" in message
    assert all(name in message for name in qrnn.list_backends())
    assert isinstance(info.value, KeyError)


def test_temporary_plugin(temporary_plugin):
    temporary_plugin("echo-plugin", EchoBackend)
    assert "test.echo" in qrnn.list_backends()
    assert isinstance(qrnn.get_backend("test.echo"), EchoBackend)
    plugins.unregister_plugin("echo-plugin")
    assert "test.echo" not in qrnn.list_backends()


def test_missing_dependency_names_the_extra(temporary_plugin):
    temporary_plugin("missing-plugin", MissingDependencyBackend)
    assert "test.missing" in qrnn.list_backends()
    assert "test.missing" not in qrnn.list_backends(available=True)
    with pytest.raises(qrnn.BackendUnavailableError, match=r"pip install 'qrnn\[some\]'"):
        qrnn.get_backend("test.missing")


def test_duplicate_name_names_both_plugins(temporary_plugin):
    class Impostor(NumpyStatevectorBackend):
        name = "numpy.statevector"

    temporary_plugin("impostor-plugin", Impostor)
    assert qrnn.get_backend("numpy.statevector").__class__ is NumpyStatevectorBackend
    (broken,) = qrnn.broken_plugins()
    assert broken.plugin == "impostor-plugin"
    assert "'qrnn.backends.numpy_sv'" in broken.error and "'impostor-plugin'" in broken.error


def test_failing_hook_is_reported_not_fatal(temporary_plugin):
    @qrnn.hookimpl
    def register_backends(register):
        raise RuntimeError("boom")

    plugins.register_plugin(SimpleNamespace(register_backends=register_backends), "bad-hook")
    try:
        assert any(b.plugin == "bad-hook" and "boom" in b.error for b in qrnn.broken_plugins())
        assert "torch.statevector" in qrnn.list_backends()
    finally:
        plugins.unregister_plugin("bad-hook")
        REGISTRY.broken.clear()


def test_registering_a_non_backend_is_reported(temporary_plugin):
    temporary_plugin("not-a-backend", object)
    assert "not a qrnn Backend subclass" in qrnn.broken_plugins()[0].error


def test_backend_class_contract_checked_at_definition():
    with pytest.raises(TypeError, match="must set 'name'"):

        class NoName(NumpyStatevectorBackend):
            name = "NoDots"

    with pytest.raises(TypeError, match="must set 'capabilities'"):

        class NoCaps(qrnn.Backend):
            name = "test.nocaps"
            capabilities = None

            def compile(self, cell):
                return None


def test_api_version_mismatch_is_refused():
    class Future(NumpyStatevectorBackend):
        name = "test.future"
        api_version = 2

    with pytest.raises(qrnn.PluginError, match="contract version 2"):
        REGISTRY.add(Future, plugin="future-plugin")


def test_entry_point_import_failure_is_reported(fresh_plugins, monkeypatch, caplog):
    broken = EntryPoint("broken", "qrnn_no_such_module_xyz", "qrnn")
    monkeypatch.setattr(plugins, "entry_points", lambda group: [broken])
    monkeypatch.delenv("QRNN_LOAD_PLUGINS", raising=False)
    names = qrnn.list_backends()
    assert {"numpy.statevector", "torch.statevector"} <= set(names)
    (report,) = qrnn.broken_plugins()
    assert report.plugin == "broken" and "ModuleNotFoundError" in report.error
    assert "broken" in caplog.text


def test_load_plugins_env_filter(fresh_plugins, monkeypatch):
    module = _plugin(EchoBackend)
    good = SimpleNamespace(name="echo", load=lambda: module)
    monkeypatch.setattr(plugins, "entry_points", lambda group: [good])
    monkeypatch.setenv("QRNN_LOAD_PLUGINS", "")
    assert "test.echo" not in qrnn.list_backends()


def test_load_plugins_env_allows_named(fresh_plugins, monkeypatch):
    module = _plugin(EchoBackend)
    good = SimpleNamespace(name="echo", load=lambda: module)
    monkeypatch.setattr(plugins, "entry_points", lambda group: [good])
    monkeypatch.setenv("QRNN_LOAD_PLUGINS", "echo,other")
    assert "test.echo" in qrnn.list_backends()
