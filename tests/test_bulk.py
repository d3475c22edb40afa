"""Bulk runs pause the cyclic garbage collector and always hand it back as they found it."""

from __future__ import annotations

import gc

import pytest

from horeca.bulk import collector_paused


def test_collector_is_paused_inside_and_restored_after_an_error() -> None:
    assert gc.isenabled()
    with pytest.raises(RuntimeError), collector_paused():
        assert not gc.isenabled()
        raise RuntimeError
    assert gc.isenabled()


def test_collector_left_off_by_the_caller_stays_off() -> None:
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
