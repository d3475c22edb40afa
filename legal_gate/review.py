"""A reviewer's decisions written back into sources.toml, keeping its comments and layout.

`approve_source` and `suspend_source` edit one `[sources.<name>]` table with tomlkit,
validate the whole result with the same rules as `load_sources`, and only then replace the
file (write to a temporary file, then rename), so a failed edit leaves the old file.

On approval the normalised terms text as reviewed is also saved next to the config, in
`reviewed-terms/<name>-<sha256[:16]>.txt`, so `horeca sources check` can show what
changed when the hash no longer matches.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.exceptions import TOMLKitError

from horeca.errors import UserError
from horeca.legal_gate.config import SourceConfig, parse_sources, resolve_sources_path

REVIEWED_TERMS_DIR = "reviewed-terms"


def _edit(path: Path, name: str, changes: dict[str, Any], remove: Iterable[str] = (), *,
          known_spiders: Iterable[str] | None = None) -> SourceConfig:
    text = path.read_text(encoding="utf-8")
    parse_sources(text, path, known_spiders=known_spiders)  # refuse to edit a broken file
    try:
        doc = tomlkit.parse(text)
    except TOMLKitError as err:  # pragma: no cover - parse_sources reports it first
        raise UserError(f"malformed TOML: {err}", path=path) from None
    sources = doc.get("sources")
    if sources is None or name not in sources:
        known = ", ".join(sources or {}) or "none"
        raise UserError(f"no source named {name!r}; known sources: {known}", path=path)
    table = sources[name]
    for key in remove:
        if key in table:
            del table[key]
    for key, value in changes.items():
        table[key] = value
    new_text = tomlkit.dumps(doc)
    config = parse_sources(new_text, path, known_spiders=known_spiders)
    _replace(path, new_text)
    return config.get(name)


def _replace(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            out.write(text)
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def approve_source(path: str | Path | None, name: str, *, reviewer: str, legal_basis: str,
                   terms_sha256: str, purpose: str | None = None, today: date | None = None,
                   known_spiders: Iterable[str] | None = None) -> SourceConfig:
    """Mark `name` approved by `reviewer` today, on `legal_basis`, for the given terms hash."""
    if not reviewer.strip():
        raise UserError("--reviewer is empty", fix="give the reviewer's name")
    if not legal_basis.strip():
        raise UserError("--basis is empty",
                        fix='state the legal basis, e.g. "GDPR Art. 6(1)(e); <national law>"')
    changes: dict[str, Any] = {
        "status": "approved", "reviewer": reviewer.strip(),
        "reviewed_on": today or date.today(), "legal_basis": legal_basis.strip(),
        "terms_sha256": terms_sha256,
    }
    if purpose:
        changes["purpose"] = purpose.strip()
    return _edit(resolve_sources_path(path), name, changes,
                 remove=("suspended_reason", "suspended_on"), known_spiders=known_spiders)


def suspend_source(path: str | Path | None, name: str, *, reason: str,
                   today: date | None = None,
                   known_spiders: Iterable[str] | None = None) -> SourceConfig:
    """Mark `name` suspended with a reason: the gate refuses its crawls from now on."""
    if not reason.strip():
        raise UserError("--reason is empty", fix="say why the source is suspended")
    return _edit(resolve_sources_path(path), name,
                 {"status": "suspended", "suspended_reason": reason.strip(),
                  "suspended_on": today or date.today()}, known_spiders=known_spiders)


def reviewed_terms_path(config_path: str | Path, name: str, sha256: str) -> Path:
    return Path(config_path).parent / REVIEWED_TERMS_DIR / f"{name}-{sha256[:16]}.txt"


def save_reviewed_terms(config_path: str | Path, name: str, sha256: str, text: str) -> Path:
    target = reviewed_terms_path(config_path, name, sha256)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text + "\n", encoding="utf-8")
    return target


def load_reviewed_terms(config_path: str | Path, name: str, sha256: str | None) -> str | None:
    if not sha256:
        return None
    target = reviewed_terms_path(config_path, name, sha256)
    return target.read_text(encoding="utf-8").rstrip("\n") if target.is_file() else None
