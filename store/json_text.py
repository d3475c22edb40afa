"""JSON text for the store's JSON columns, written and read in bulk.

A keying run writes some 15 MB of explanations (every candidate's grades, weights and
waterfall) and reads back thousands of prepared register units; the standard library's
encoder spends about half a second on the former. orjson does the same in a tenth of it.

The text is compact (no spaces after separators), UTF-8 (nothing \\u-escaped but control
characters) and standard JSON: NaN and infinities are written as null, dictionary keys
that are not strings as strings. Values JSON has no type for are written as `str(value)`.
"""

from __future__ import annotations

from typing import Any

import orjson

_OPTIONS = orjson.OPT_NON_STR_KEYS


def dumps(value: Any) -> str:
    """`value` as compact JSON text."""
    return orjson.dumps(value, default=str, option=_OPTIONS).decode()


def loads(text: str | bytes) -> Any:
    """The value of JSON text."""
    return orjson.loads(text)
