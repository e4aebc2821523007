"""Fixtures of the conformance suite: ``backend_name`` is every installed backend unless
``--backend NAME`` picks one; ``--option key=value`` passes backend options."""

from __future__ import annotations

import pytest

import qrnn
from qrnn.assignments import parse_assignments
from qrnn.errors import QRNNError


def pytest_addoption(parser):
    group = parser.getgroup("qrnn", "qrnn backend conformance")
    group.addoption("--backend", default=None, help="backend name to test (default: all available)")
    group.addoption(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="backend option, repeatable; VALUE is read as JSON when it parses, else as a string",
    )


def _parse_options(items: list[str]) -> dict:
    try:
        return parse_assignments(items, "--option")
    except QRNNError as error:
        raise pytest.UsageError(str(error)) from None


def pytest_generate_tests(metafunc):
    if "backend_name" in metafunc.fixturenames:
        name = metafunc.config.getoption("--backend")
        names = [name] if name else qrnn.list_backends(available=True)
        metafunc.parametrize("backend_name", names)


@pytest.fixture
def backend_options(request) -> dict:
    return _parse_options(request.config.getoption("--option"))


@pytest.fixture
def backend(backend_name, backend_options):
    """The backend under test in exact mode (unless the options ask for shots)."""
    return qrnn.get_backend(backend_name, **backend_options)


@pytest.fixture
def tol(backend) -> float:
    return backend.tolerance


@pytest.fixture(scope="session")
def reference():
    return qrnn.get_backend("numpy.statevector")


@pytest.fixture
def exact_only(backend):
    if backend.shots is not None:
        pytest.skip("exactness checks need exact readouts; this run uses shots")
