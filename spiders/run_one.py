"""Entry point of a crawl subprocess: `python -m horeca.spiders.run_one SPEC.json`.

Twisted's reactor cannot be restarted inside a process, so every crawl runs in its own
process (see `horeca.spiders.crawl_process` for what it does). This module stays tiny so
that it can keep heavy, unused libraries out of the subprocess before anything imports
them.
"""

from __future__ import annotations

import sys


def skip_dataframe_libraries() -> None:
    """sqlite-utils imports pandas and numpy when they are installed, only to convert their
    types; a crawl never hands it a DataFrame, and those imports cost about a second of
    CPU in every crawl subprocess."""
    for name in ("pandas", "numpy"):
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]


if __name__ == "__main__":
    skip_dataframe_libraries()
    from horeca.spiders.crawl_process import main

    sys.exit(main(sys.argv[1:]))
