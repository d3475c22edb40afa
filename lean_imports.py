"""Keeping libraries horeca never uses out of a process's start-up.

Some libraries import others whenever they are installed, for value types horeca never
handles: sqlite-utils imports pandas (0.4 s) and numpy only to map their values to column
types; Scrapy's itemadapter imports pydantic for pydantic items (our items are dicts).

* `skip(...)`: the named libraries can no longer be imported in this process (crawl
  workers, which need none of them: see spiders/run_one.py);
* `import_sqlite_utils_without_pandas()`: sqlite-utils imported with pandas hidden;
  `import pandas` works as usual afterwards (the command line does this first: cli.py);
* `lazy_exports(...)`: a package's public names, each imported from its module on first
  use, so that importing one part of a package (`horeca.geocode.geo`) does not import all
  of it (see geocode/__init__.py).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping


def skip(*names: str) -> None:
    """Make `import name` fail in this process for each of `names` (unless imported)."""
    for name in names:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]


def import_sqlite_utils_without_pandas() -> None:
    if "sqlite_utils" in sys.modules or "pandas" in sys.modules:
        return
    sys.modules["pandas"] = None  # type: ignore[assignment]  # `import pandas` now fails
    try:
        import sqlite_utils  # noqa: F401
    finally:
        del sys.modules["pandas"]


def lazy_exports(package: str, modules: Mapping[str, tuple[str, ...]]
                 ) -> Callable[[str], object]:
    """A module `__getattr__` for `package` that imports each public name from its module
    (`{"horeca.geocode.run": ("geocode_pending",), ...}`) when it is first asked for."""
    module_of = {name: module for module, names in modules.items() for name in names}

    def __getattr__(name: str) -> object:
        if name not in module_of:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module_of[name]), name)
        setattr(sys.modules[package], name, value)  # later lookups skip this function
        return value

    return __getattr__
