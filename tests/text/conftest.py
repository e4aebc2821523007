"""Shared pieces of the text tests: the fixture files and a marker for optional data packages."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "needs_package(name): skip unless the PyPI distribution is installed"
    )


def pytest_runtest_setup(item):
    for marker in item.iter_markers("needs_package"):
        name = marker.args[0]
        try:
            importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            pytest.skip(f"the offline data package {name!r} is not installed")


@pytest.fixture
def text_data() -> Path:
    """The directory of fixture files in the real layouts (see data/README.md)."""
    return DATA
