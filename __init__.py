"""horeca: find HoReCa businesses visible online but missing from the enterprise register.

Data flows one way:
    sources config -> legal_gate -> spiders -> store -> register -> geocode -> keying -> exports
"""

__version__ = "0.1.0"


def _import_sqlite_utils_without_pandas() -> None:
    """sqlite-utils imports pandas whenever it is installed (0.4 s, a third of every
    command's start-up) only to map `pandas.Timestamp` values to TEXT columns, and horeca
    never writes pandas values. Import it once with pandas hidden; `import pandas` works
    as usual afterwards."""
    import sys

    if "sqlite_utils" in sys.modules or "pandas" in sys.modules:
        return
    sys.modules["pandas"] = None  # type: ignore[assignment]  # `import pandas` now fails
    try:
        import sqlite_utils  # noqa: F401
    finally:
        del sys.modules["pandas"]


_import_sqlite_utils_without_pandas()
