"""Benchmarks, one command each: `python -m bench all|crawl|register|geocode|keying|compare`.

Figures go to bench/results/<name>.json and are quoted in docs/benchmarks.md. Speed and
memory are measured here, never asserted in tests.
"""

from horeca.lean_imports import import_sqlite_utils_without_pandas

# Every benchmark process (and every process it spawns) starts as the `horeca` command
# does: sqlite-utils without pandas (see horeca/lean_imports.py).
import_sqlite_utils_without_pandas()
