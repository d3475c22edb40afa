"""Reading the user's TOML files (sources, regions, mappings, settings) with one-line errors.

Every config the tool reads goes through here so a syntax mistake, a missing file or a
file in the wrong encoding is reported the same way: the file, the line when TOML knows
it, and what to do.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from horeca.errors import UserError

# tomllib (before Python 3.14) gives the position only inside the message: "... (at line 3,
# column 7)".
_LINE_IN_MESSAGE = re.compile(r"at line (\d+)")


def parse_toml(text: str, path: str | Path) -> dict[str, Any]:
    """Parse TOML text read from `path`; a syntax error names the file and its line."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        match = _LINE_IN_MESSAGE.search(str(err))
        if match is None:  # "at end of document": something opened earlier is never closed
            raise UserError(f"malformed TOML: {err}", path=path,
                            fix="close the last bracket or quote that was opened") from None
        raise UserError(f"malformed TOML: {err}", path=path, line=int(match.group(1)),
                        fix="check the quotes, brackets and '=' on that line") from None


def read_toml_text(path: str | Path, *, what: str, option: str) -> str:
    """The text of a TOML file the user named with `option`, or a clear error.

    `what` names the file for the user ("keying config", "mapping file").
    """
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{what} not found", path=p, fix=f"check the {option} path")
    try:
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{what} is not UTF-8 text", path=p, fix="save it as UTF-8") from None


def read_toml(path: str | Path, *, what: str, option: str) -> dict[str, Any]:
    """Read and parse a TOML file the user named with `option` (see `read_toml_text`)."""
    return parse_toml(read_toml_text(path, what=what, option=option), path)
