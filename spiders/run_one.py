"""Entry point of a crawl subprocess: `python -m horeca.spiders.run_one SPEC.json`.

Twisted's reactor cannot be restarted inside a process, so every crawl runs in its own
process (see `horeca.spiders.crawl_process` for what it does). This module stays tiny so
that it can keep heavy, unused libraries out of the subprocess before anything imports
them.
"""

from __future__ import annotations

import sys


def skip_unused_libraries() -> None:
    """Libraries that other libraries import only when installed, for types a crawl never
    handles: sqlite-utils imports pandas and numpy to convert their values (about a
    second of CPU per worker), Scrapy's itemadapter imports pydantic to support pydantic
    items (0.1 s; our items are dicts)."""
    for name in ("pandas", "numpy", "pydantic"):
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]


if __name__ == "__main__":
    skip_unused_libraries()
    from horeca.spiders.crawl_process import main

    sys.exit(main(sys.argv[1:]))
