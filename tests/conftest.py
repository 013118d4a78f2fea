"""Shared fixtures. Integration tests need root: CI and the README's command run as root."""

from __future__ import annotations

import os

import pytest

from edgetestbed.ledger import Ledger, remove_all


@pytest.fixture
def ledger(tmp_path):
    """A ledger whose every recorded resource is removed after the test, pass or fail."""
    book = Ledger(tmp_path / "resources.jsonl")
    yield book
    leftovers = remove_all(book.entries())
    assert not leftovers, f"could not remove {leftovers}"


def pytest_collection_modifyitems(config, items):
    if os.geteuid() != 0:
        skip = pytest.mark.skip(reason="needs root (emulated networks, cgroups): run with sudo")
        for item in items:
            if "root" in item.keywords:
                item.add_marker(skip)
