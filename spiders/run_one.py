"""Entry point of a crawl subprocess: `python -m horeca.spiders.run_one SPEC.json`.

Twisted's reactor cannot be restarted inside a process, so every crawl runs in its own
process (see `horeca.spiders.crawl_process` for what it does). This module stays tiny so
that it can keep heavy, unused libraries out of the subprocess before anything imports
them.
"""

from __future__ import annotations

import sys

if __name__ == "__main__":
    from horeca.lean_imports import skip

    skip("pandas", "numpy", "pydantic")  # see lean_imports: a crawl handles none of them
    from horeca.spiders.crawl_process import main

    sys.exit(main(sys.argv[1:]))
