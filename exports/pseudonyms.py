"""Stable keyed pseudonyms for natural persons (sole traders) in exports.

A sole trader's business name is often the person's own name, and their phone and address
may be private ones: personal data under the GDPR. Exports replace them with
`person-3f2a1c0b`-style pseudonyms unless the analyst passes `--reveal` (audited).

The pseudonym is an HMAC-SHA256 of the value under a secret key kept in the database's
`settings` table, so it is stable across exports (the same name always gives the same
pseudonym, and review import can map pseudonymised ids back) while someone holding only the
export cannot confirm a guess by hashing a name themselves.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import unicodedata

import sqlite_utils

from horeca.store import transaction
from horeca.store.runs import now_iso

KEY_SETTING = "pseudonym_key"
# Hex digits kept: short for what people read, long where a collision would mis-map a row.
_LENGTHS = {"person": 8, "phone": 8, "web": 8, "unit": 8, "listing": 12, "place": 12}


def pseudonym_key(db: sqlite_utils.Database) -> bytes:
    """The database's pseudonym key, created on first use."""
    with transaction(db):
        db.conn.execute(
            "INSERT OR IGNORE INTO settings (name, value, updated_at) VALUES (?, ?, ?)",
            (KEY_SETTING, secrets.token_hex(32), now_iso()))
        row = db.conn.execute("SELECT value FROM settings WHERE name = ?",
                              (KEY_SETTING,)).fetchone()
    return bytes.fromhex(row[0])


def _canonical(value: str) -> str:
    text = unicodedata.normalize("NFKC", str(value)).casefold()
    return " ".join(text.split())


def pseudonym(key: bytes, kind: str, value: str | None) -> str | None:
    """`kind-<hex>` for a non-empty value (case and spacing ignored); None stays None."""
    if value is None or not str(value).strip():
        return None
    digest = hmac.new(key, f"{kind}\x00{_canonical(value)}".encode(), hashlib.sha256)
    return f"{kind}-{digest.hexdigest()[:_LENGTHS.get(kind, 8)]}"


def street_level(lat: float | None, lon: float | None) -> tuple[float | None, float | None]:
    """Coordinates rounded to 3 decimals (about 110 m north-south, 70 m east-west here).

    A pseudonymised row keeps its street but not its house number, and the point must not
    give the house number back.
    """
    if lat is None or lon is None:
        return lat, lon
    return round(lat, 3), round(lon, 3)
