"""Fingerprints of the code whose output is stored, so that stored derived data (keying's
index of the register, the gazetteer's index) is rebuilt when an upgrade changes it."""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Iterable
from pathlib import Path


def source_fingerprint(modules: Iterable[str], salt: str = "") -> str:
    """A hash of `salt` and of the source of the named modules (every file of a package),
    16 hex digits."""
    digest = hashlib.sha256(salt.encode())
    for name in modules:
        module = importlib.import_module(name)
        path = Path(module.__file__ or "")
        files = sorted(path.parent.glob("*.py")) if path.name == "__init__.py" else [path]
        for file in files:
            digest.update(file.name.encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]
