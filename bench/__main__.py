"""`python -m bench NAME [ARGS...]`: run one benchmark, or `all` of them in sequence.

    .venv/bin/python -m bench all                      # every benchmark, one after another
    .venv/bin/python -m bench compare --scale large    # one, with its own options
    .venv/bin/python -m bench keying --help

Each benchmark is its own script (bench/<script>.py) run in its own process, so one's
memory never inflates another's figures; each writes bench/results/<name>.json itself.
`all` carries on after a failure and reports every status at the end.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# name -> (module under bench/, arguments `all` gives it)
BENCHMARKS: dict[str, tuple[str, list[str]]] = {
    "register": ("register", []),
    "crawl": ("crawl", []),
    "geocode": ("geocode", []),
    "keying": ("keying", []),
    "compare": ("splink_compare", ["--scale", "all"]),
}
USAGE = ("usage: python -m bench {all," + ",".join(BENCHMARKS) + "} [ARGS...]\n"
         "example: python -m bench compare --scale large")


def run(name: str, args: list[str]) -> int:
    module, _ = BENCHMARKS[name]
    if not (ROOT / "bench" / f"{module}.py").is_file():
        print(f"[bench] {name}: bench/{module}.py does not exist (yet)", file=sys.stderr)
        return 2
    print(f"[bench] {name}: python -m bench.{module} {' '.join(args)}".rstrip(), flush=True)
    started = time.monotonic()
    code = subprocess.run([sys.executable, "-m", f"bench.{module}", *args], cwd=ROOT).returncode
    print(f"[bench] {name}: exit {code} after {time.monotonic() - started:.0f} s", flush=True)
    return code


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip() + "\n\n" + USAGE)
        return 0 if argv else 2
    name, args = argv[0], argv[1:]
    if name == "all":
        if args:
            print("`all` takes no options; run a benchmark by name to pass some",
                  file=sys.stderr)
            return 2
        codes = {n: run(n, default) for n, (_, default) in BENCHMARKS.items()}
        for n, code in codes.items():
            print(f"[bench] {n:<9} {'ok' if code == 0 else f'FAILED (exit {code})'}")
        return 0 if all(c == 0 for c in codes.values()) else 1
    if name not in BENCHMARKS:
        print(f"unknown benchmark {name!r}\n{USAGE}", file=sys.stderr)
        return 2
    return run(name, args)


if __name__ == "__main__":
    raise SystemExit(main())
