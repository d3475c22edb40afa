"""Plain listing and register-unit records from the demo-world generator, for tests and
benchmarks (never used by the pipeline, which reads the store).

`units_from_world` mirrors what a register import makes of the KBO extract the generator
writes: one row per establishment unit, one per enterprise without units (its seat), names
from both levels, contacts from both levels. Unit coordinates are the gazetteer position of
the unit's address, which is what the offline geocoder returns for it.
"""

from __future__ import annotations

import json
from typing import Any

from horeca.normalize import to_e164

_TYPES = {"001": "legal", "002": "abbreviation", "003": "commercial", "004": "branch"}
_LANGS = {"0": "", "1": "fr", "2": "nl", "3": "de", "4": "en"}


def _names(ent: Any, unit: Any | None) -> list[dict[str, str]]:
    out = []
    if unit is not None:
        out += [{"name": n.text, "type": _TYPES[n.type], "lang": _LANGS[n.lang],
                 "level": "establishment"} for n in unit.names]
    out += [{"name": n.text, "type": _TYPES[n.type], "lang": _LANGS[n.lang],
             "level": "enterprise"} for n in ent.names]
    return out


def _address(prefix: str, addr: Any) -> dict[str, Any]:
    if addr is None:
        return {}
    s = addr.street
    return {f"{prefix}street_fr": s.fr, f"{prefix}street_nl": s.nl,
            f"{prefix}house_number": addr.house_number, f"{prefix}box": addr.box or None,
            f"{prefix}postcode": s.postcode, f"{prefix}municipality_fr": s.municipality_fr,
            f"{prefix}municipality_nl": s.municipality_nl}


def _contacts(contacts: list[tuple[str, str]], kind: str) -> list[str]:
    values = [v for k, v in contacts if k == kind]
    if kind == "TEL":
        return [p for p in (to_e164(v, "BE") for v in values) if p]
    return values


def _row(ent: Any, unit: Any | None) -> dict[str, Any]:
    contacts = list(ent.contacts) + (list(unit.contacts) if unit is not None else [])
    activities = list(ent.activities) + (list(unit.activities) if unit is not None else [])
    addr = unit.address if unit is not None else ent.seat
    row: dict[str, Any] = {
        "unit_id": unit.number if unit is not None else ent.number,
        "enterprise_number": ent.number,
        "establishment_number": unit.number if unit is not None else None,
        "names": json.dumps(_names(ent, unit), ensure_ascii=False),
        **_address("", addr),
        "phones": json.dumps(_contacts(contacts, "TEL")),
        "websites": json.dumps(_contacts(contacts, "WEB")),
        "emails": json.dumps(_contacts(contacts, "EMAIL")),
        "nace": json.dumps([{"code": c, "version": v, "classification": k}
                            for _, v, c, k in activities]),
        "horeca": int(any(c[:2] in ("55", "56") for _, _, c, _ in activities)),
        "natural_person": int(ent.natural),
    }
    if unit is not None and ent.seat is not None and not ent.foreign_country:
        row.update(_address("seat_", ent.seat))
    if addr is not None and not (unit is None and ent.foreign_country):
        row["lat"], row["lon"] = addr.point
    return row


def units_from_world(world: Any) -> list[dict[str, Any]]:
    """Register-unit dicts (the `register_units` shape) for the generator's register."""
    rows: list[dict[str, Any]] = []
    for ent in world.register.enterprises:
        if ent.units:
            rows.extend(_row(ent, u) for u in ent.units)
        elif ent.seat is not None or ent.foreign_country:
            rows.append(_row(ent, None))
    return rows


def listings_from_world(world: Any, sources: tuple[str, ...] | None = None
                        ) -> list[dict[str, Any]]:
    """Listing dicts (the `listings` shape, with `id`) as a perfect spider would store."""
    out = []
    for source, records in world.listings.items():
        if sources and source not in sources:
            continue
        for r in records:
            out.append({**r, "id": f"{r['source']}:{r['source_id']}",
                        "alt_names": json.dumps(r.get("alt_names") or [])})
    return out
