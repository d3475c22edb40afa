"""The pure steps every listing goes through, crawled or imported.

Each step takes a listing dict and returns a new one (or a drop reason); the Scrapy item
pipelines in `horeca.spiders.pipelines` and `horeca listings import` call the same
functions in the same order (see `STEP_ORDER`), after the legal gate's minimiser:

    clean_strings -> parse_address_fields -> normalise_phone -> normalise_website
    -> parse_vat -> coerce_numbers -> validate -> region_drop_reason -> (dedupe, write)
"""

from __future__ import annotations

import html
import json
import math
import re
import unicodedata
from typing import Any

from horeca.normalize import (
    country_code,
    normalize_url,
    parse_address,
    parse_enterprise_number,
    to_e164,
)
from horeca.region import Region
from horeca.spiders.model import FLOAT_FIELDS, INT_FIELDS, TEXT_FIELDS

Listing = dict[str, Any]

STEP_ORDER: tuple[str, ...] = (
    "minimise", "clean_strings", "parse_address", "normalise_phone", "normalise_website",
    "parse_vat", "coerce_numbers", "validate", "region", "dedupe", "write",
)

# Invisible characters platforms leave in text (zero-width space/joiners, BOM, soft hyphen).
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)
_SPACES = re.compile(r"\s+")
_TAGS = re.compile(r"<[^>]{0,200}>")



# --------------------------------------------------------------------------- strings

def clean_text(value: Any) -> str | None:
    """Entities decoded, stray tags and invisible characters removed, whitespace collapsed."""
    if value is None:
        return None
    text = str(value)
    if text.isascii() and "&" not in text and "<" not in text:
        # nothing to decode, strip or normalise (invisible characters are not ASCII)
        return " ".join(text.split()) or None
    if "&" in text:
        text = html.unescape(text)
    if "<" in text:
        text = _TAGS.sub(" ", text)
    text = unicodedata.normalize("NFC", text.translate(_INVISIBLE))
    text = _SPACES.sub(" ", text).strip()
    return text or None


def _clean_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("["):
            try:
                value = json.loads(stripped)
            except ValueError:
                value = [value]
        else:
            value = [value]
    if not isinstance(value, (list, tuple)):
        value = [value]
    cleaned = [clean_text(v) for v in value]
    return list(dict.fromkeys(v for v in cleaned if v))


def clean_strings(item: Listing) -> Listing:
    """Clean every text field; alt_names becomes a list without the main name."""
    out = dict(item)
    for field in TEXT_FIELDS:
        if field in out:
            value = out[field]
            if isinstance(value, (list, tuple)):
                value = "; ".join(v for v in _clean_list(value))
            out[field] = clean_text(value)
    names = _clean_list(out.get("alt_names"))
    out["alt_names"] = [n for n in names if n != out.get("name")]
    return {k: v for k, v in out.items() if v is not None}


# --------------------------------------------------------------------------- address

def parse_address_fields(item: Listing, default_country: str = "BE") -> Listing:
    """Fill street, number, box, postcode, locality, country.

    Parts the page gives win; missing parts come from `parse_address(address_raw)`. The
    country defaults to `default_country` once anything of the address is known.
    """
    out = dict(item)
    raw = out.get("address_raw")
    if raw and not (out.get("street") and out.get("postcode")):
        parts = parse_address(raw)
        for field in ("street", "house_number", "box", "postcode", "locality", "country"):
            parsed = getattr(parts, field, None)
            if not out.get(field) and parsed:
                out[field] = parsed
    if not raw and (out.get("street") or out.get("postcode") or out.get("locality")):
        line1 = " ".join(p for p in (out.get("street"), out.get("house_number")) if p)
        if out.get("box"):
            line1 = f"{line1} bus {out['box']}"
        line2 = " ".join(p for p in (out.get("postcode"), out.get("locality")) if p)
        out["address_raw"] = ", ".join(p for p in (line1, line2) if p)
    if out.get("postcode"):
        postcode = re.sub(r"\s+", "", str(out["postcode"])).upper()
        belgian = re.fullmatch(r"B-?(\d{4})", postcode)  # "B-1000", an old postal form
        out["postcode"] = belgian.group(1) if belgian else postcode
    has_address = any(out.get(f) for f in ("street", "postcode", "locality", "address_raw"))
    out["country"] = country_code(out.get("country"), default_country if has_address else None)
    return {k: v for k, v in out.items() if v is not None}


# --------------------------------------------------------------------------- contact

def normalise_phone(item: Listing, default_country: str = "BE") -> Listing:
    """`phone` = E.164 of the raw number (None when it is not a valid number); raw kept."""
    out = dict(item)
    raw = out.get("phone_raw") or out.get("phone")
    if not raw:
        out.pop("phone", None)
        return out
    raw = re.sub(r"^(?:tel|callto):", "", str(raw), flags=re.I).strip()
    out["phone_raw"] = raw
    country = out.get("country") or default_country
    e164 = to_e164(raw, country)
    if e164:
        out["phone"] = e164
    else:
        out.pop("phone", None)
    return out


def normalise_website(item: Listing) -> Listing:
    out = dict(item)
    if out.get("website"):
        website = normalize_url(out["website"])
        if website:
            out["website"] = website
        else:
            out.pop("website")
    return out


def parse_vat(item: Listing) -> Listing:
    """`vat` = the enterprise number's 10 digits when valid (mod 97), else dropped."""
    out = dict(item)
    if out.get("vat"):
        digits = parse_enterprise_number(str(out["vat"]))
        if digits:
            out["vat"] = digits
        else:
            out.pop("vat")
    return out


# --------------------------------------------------------------------------- numbers

def to_float(value: Any) -> float | None:
    """'50,8467' and ' 4.35 ' read as numbers; anything else (or NaN) is None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        number = float(value)
    else:
        text = str(value).strip().replace("\u2009", "").replace(" ", "")
        if text.count(",") == 1 and "." not in text:
            text = text.replace(",", ".")
        try:
            number = float(text)
        except ValueError:
            return None
    return number if math.isfinite(number) else None


def to_int(value: Any) -> int | None:
    """'1 234', '1.234', '1,234 reviews' and '(87)' read as counts; else None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) else None
    match = re.search(r"(-?)(\d[\d\s.,\u202f\u00a0]*)", str(value))
    if not match:
        return None
    sign = -1 if match.group(1) else 1
    text = match.group(2).strip().rstrip(".,")
    # "4.5" is not four-thousand-five: a single separator followed by 1-2 digits is decimal
    if re.fullmatch(r"\d+[.,]\d{1,2}", text):
        return sign * int(float(text.replace(",", ".")))
    digits = re.sub(r"[^\d]", "", text)
    return sign * int(digits) if digits else None


def coerce_numbers(item: Listing) -> Listing:
    """Numbers as numbers; impossible values (negative counts, lat 200) are removed."""
    out = dict(item)
    for field in FLOAT_FIELDS:
        if field in out:
            out[field] = to_float(out[field])
    for field in INT_FIELDS:
        if field in out:
            out[field] = to_int(out[field])
    lat, lon = out.get("lat"), out.get("lon")
    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180) or (
            lat == 0 and lon == 0):
        out.pop("lat", None)
        out.pop("lon", None)
    for field in ("review_count", "rooms"):
        if out.get(field) is not None and out[field] < 0:
            out[field] = None
    if out.get("rating") is not None and not 0 <= out["rating"] <= 10:
        out["rating"] = None
    return {k: v for k, v in out.items() if v is not None}


# --------------------------------------------------------------------------- checks

def validate(item: Listing) -> str | None:
    """The reason to drop a listing, or None when it is usable."""
    if not item.get("source"):
        return "missing_source"
    if not item.get("source_id"):
        return "missing_source_id"
    if not item.get("name"):
        return "missing_name"
    return None


def region_drop_reason(item: Listing, region: Region | None) -> str | None:
    """'outside_region' when the postcode (or, without one, the coordinates) is outside.

    A listing with neither postcode nor coordinates cannot be placed and is kept: keying
    can still match it on name and phone.
    """
    if region is None:
        return None
    country = item.get("country")
    if country and region.country and country != region.country:
        return "outside_region"
    if item.get("postcode"):
        return None if region.contains_postcode(item["postcode"]) else "outside_region"
    if item.get("lat") is not None and item.get("lon") is not None:
        return None if region.contains_point(item["lat"], item["lon"]) else "outside_region"
    return None


def normalise_listing(item: Listing, default_country: str = "BE") -> Listing:
    """All the value-changing steps in order (no drops): what a pipeline chain does."""
    item = clean_strings(item)
    item = parse_address_fields(item, default_country)
    item = normalise_phone(item, default_country)
    item = normalise_website(item)
    item = parse_vat(item)
    return coerce_numbers(item)
