"""Benchmarks, one command each: `python -m bench all|crawl|register|geocode|keying|compare`.

Figures go to bench/results/<name>.json and are quoted in docs/benchmarks.md. Speed and
memory are measured here, never asserted in tests.
"""
