"""The examples in the normalisers' docstrings are true."""

from __future__ import annotations

import doctest
import importlib

import pytest


@pytest.mark.parametrize(
    "module", ["text", "phones", "names", "addresses", "web", "identifiers"]
)
def test_docstring_examples_hold(module: str) -> None:
    mod = importlib.import_module(f"horeca.normalize.{module}")
    result = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
