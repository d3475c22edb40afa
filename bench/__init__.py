"""Benchmarks, one command each: `python -m bench all|crawl|register|geocode|keying|compare`.

Figures go to bench/results/<name>.json and are quoted in docs/benchmarks.md. Speed and
memory are measured here, never asserted in tests.
"""

from horeca.lean_imports import import_sqlite_utils_without_pandas

# Every benchmark process (and every process it spawns) starts as the `horeca` command
# does: sqlite-utils without pandas (see horeca/lean_imports.py).
import_sqlite_utils_without_pandas()


def compile_package() -> None:
    """Write horeca's bytecode (`__pycache__`) before timing commands, as a first run on
    an installed copy would: this machine sets PYTHONDONTWRITEBYTECODE, so otherwise every
    timed command would compile the package's source again (about 0.1 s)."""
    import compileall
    import re
    from pathlib import Path

    import horeca

    skipped = re.compile(r"[/\\](\.venv|bench[/\\]data|fixtures[/\\]demo)([/\\]|$)")
    compileall.compile_dir(Path(horeca.__file__).parent, quiet=1, rx=skipped)


def reference_loop_seconds() -> float:
    """CPU seconds of a fixed pure-Python loop (the best of three), taken next to each
    benchmark: this VM's speed drifts by half from hour to hour with nothing else
    running, and this says which kind of hour a figure comes from (about 0.35 s in a
    fast hour, 0.5-0.57 s in a slow one on 23 Nov)."""
    import time

    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        sum(i * i for i in range(5_000_000))
        best = min(best, time.process_time() - start)
    return round(best, 3)
