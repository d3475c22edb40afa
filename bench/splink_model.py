"""The Splink side of the side-by-side benchmark, run as its own process.

    python -m bench.splink_model --db PREPARED.db --out SPLINK.json [--threshold 0.9]

Reads the store horeca prepared (the region's active register snapshot, the listings,
their geocodes) and links listings to register units with Splink 4 on DuckDB, as a
competent Splink user would, without labels:

* Preparation (in Python, timed): names folded (lower case, accents and punctuation
  removed, common Belgian/Dutch/French legal forms dropped); every name of a unit and of a
  listing kept as an array; name tokens of 3+ letters shared by at most 0.5 % of the units
  (so "restaurant" or "hotel" do not block everything with everything); FR and NL street
  names; the house number's leading digits; postcode; E.164 phones; website domains
  (scheme, "www." and path removed); coordinates (the listing's own, else its geocode; the
  unit's geocode).
* Comparisons: names (best pair, Jaro-Winkler 0.95 / 0.88 / 0.80), streets (best pair,
  Jaro-Winkler 0.90), house number and postcode (exact), phones and domains (arrays share
  a value), distance (30 m / 100 m / 500 m).
* Blocking for predictions: postcode + house number, a shared phone, a shared domain, a
  shared rare name token (arrays exploded).
* Training: probability two random records match from deterministic rules (same phone;
  same postcode, number and a name token) at an assumed recall of 0.8; u by random
  sampling; m by EM over two blocking rules (postcode + house number; phone).
* Decision: match probability >= --threshold (default 0.9), then the best unit per
  listing (ties: the lower unit id).

Writes {"predictions": {listing_id: [unit_id, probability]}, "seconds": {...}, ...} to
--out. Splink is a benchmark-only extra: `make bench` installs it.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import sqlite3
import sys
import time
import unicodedata
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

REGION = "brussels"
LEGAL_FORMS = frozenset({
    "sa", "nv", "srl", "bv", "sprl", "bvba", "scrl", "cvba", "sc", "cv", "sas", "asbl", "vzw",
    "snc", "vof", "scs", "comm", "v", "gcv", "gmbh", "ag", "ltd", "sprlu", "eenmanszaak"})
MIN_TOKEN_LEN = 3
RARE_TOKEN_SHARE = 0.005
INSTALL_HINT = "Splink is not installed: run `make bench` (or .venv/bin/pip install " \
               "'splink>=4,<5' duckdb)"


def require_splink() -> None:
    """Exit with one clear line when the benchmark extra is missing."""
    try:
        import duckdb  # noqa: F401
        import splink  # noqa: F401
    except ImportError:
        raise SystemExit(INSTALL_HINT) from None


# ----------------------------------------------------------------------------- cleaning


def fold(text: str | None) -> str:
    """Lower case, no accents, punctuation as spaces, single spaces."""
    if not text:
        return ""
    text = unicodedata.normalize("NFKD", text.lower())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text).split())


def clean_name(text: str | None) -> str:
    return " ".join(t for t in fold(text).split() if t not in LEGAL_FORMS)


def domain(url: str | None) -> str | None:
    if not url:
        return None
    m = re.match(r"^(?:[a-z][a-z0-9+.-]*://)?(?:www\.)?([^/:?#@\s]+)", url.strip().lower())
    return m.group(1) if m else None


def house_digits(number: str | None) -> str | None:
    m = re.match(r"\s*(\d+)", number or "")
    return m.group(1) if m else None


def _list(values: Iterable[str | None]) -> list[str] | None:
    """Distinct non-empty values in order; None for none (Splink's "missing")."""
    out: list[str] = []
    for v in values:
        if v and v not in out:
            out.append(v)
    return out or None


def _json_list(text: str | None) -> list:
    if not text:
        return []
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return [text]
    return value if isinstance(value, list) else [value]


def tokens(names: list[str] | None) -> set[str]:
    return {t for n in names or [] for t in n.split() if len(t) >= MIN_TOKEN_LEN
            and not t.isdigit()}


# ----------------------------------------------------------------------------- reading


def read_store(db_path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(listing rows, unit rows) in Splink's shape, from the prepared store."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    snapshot = conn.execute("SELECT id FROM register_snapshots WHERE region = ? AND status = "
                            "'active'", (REGION,)).fetchone()
    if snapshot is None:
        raise SystemExit(f"{db_path}: no active register snapshot for {REGION}")
    units = []
    for (unit_id, names, st_fr, st_nl, number, postcode, phones, websites, lat,
         lon) in conn.execute(
            "SELECT u.unit_id, u.names, u.street_fr, u.street_nl, u.house_number, u.postcode, "
            "u.phones, u.websites, coalesce(u.lat, g.lat), coalesce(u.lon, g.lon) "
            "FROM register_units u LEFT JOIN entity_geocodes g ON g.entity_kind = 'unit' "
            "AND g.entity_id = u.unit_id WHERE u.snapshot_id = ?", snapshot):
        units.append({
            "unique_id": unit_id,
            "names": _list(clean_name(n.get("name") if isinstance(n, dict) else n)
                           for n in _json_list(names)),
            "streets": _list([fold(st_fr), fold(st_nl)]),
            "house_number": house_digits(number), "postcode": postcode or None,
            "phones": _list(_json_list(phones)),
            "phone": (_json_list(phones) or [None])[0],
            "domains": _list(domain(w) for w in _json_list(websites)),
            "lat": lat, "lon": lon})
    listings = []
    for (lid, name, alt, legal, street, number, postcode, phone, website, lat,
         lon) in conn.execute(
            "SELECT l.id, l.name, l.alt_names, l.legal_name, l.street, l.house_number, "
            "l.postcode, l.phone, l.website, coalesce(l.lat, g.lat), coalesce(l.lon, g.lon) "
            "FROM listings l LEFT JOIN entity_geocodes g ON g.entity_kind = 'listing' "
            "AND g.entity_id = l.id"):
        listings.append({
            "unique_id": lid,
            "names": _list(clean_name(n) for n in [name, *_json_list(alt), legal]),
            "streets": _list([fold(street)]),
            "house_number": house_digits(number), "postcode": postcode or None,
            "phones": _list([phone]), "phone": phone or None,
            "domains": _list([domain(website)]),
            "lat": lat, "lon": lon})
    conn.close()
    add_rare_tokens(listings, units)
    return listings, units


def add_rare_tokens(listings: list[dict[str, Any]], units: list[dict[str, Any]]) -> None:
    """Blocking tokens: name words held by few register units."""
    counts: Counter[str] = Counter()
    for u in units:
        counts.update(tokens(u["names"]))
    limit = max(5, int(RARE_TOKEN_SHARE * len(units)))
    for row in (*listings, *units):
        rare = sorted(t for t in tokens(row["names"]) if counts[t] <= limit and counts[t])
        row["name_tokens"] = rare or None


# ----------------------------------------------------------------------------- model


def settings(threshold_recall: float = 0.8) -> Any:
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    del threshold_recall
    return SettingsCreator(
        link_type="link_only",
        unique_id_column_name="unique_id",
        comparisons=[
            cl.PairwiseStringDistanceFunctionAtThresholds("names", "jaro_winkler",
                                                          [0.95, 0.88, 0.80]),
            cl.PairwiseStringDistanceFunctionAtThresholds("streets", "jaro_winkler", [0.90]),
            cl.ExactMatch("house_number"),
            cl.ExactMatch("postcode"),
            cl.ArrayIntersectAtSizes("phones", [1]),
            cl.ArrayIntersectAtSizes("domains", [1]),
            cl.DistanceInKMAtThresholds("lat", "lon", [0.03, 0.1, 0.5]),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("postcode", "house_number"),
            block_on("phones", arrays_to_explode=["phones"]),
            block_on("domains", arrays_to_explode=["domains"]),
            block_on("names", arrays_to_explode=["names"]),
            block_on("name_tokens", arrays_to_explode=["name_tokens"]),
        ],
        retain_intermediate_calculation_columns=False,
    )


def link(listings: list[dict[str, Any]], units: list[dict[str, Any]], threshold: float,
         seconds: dict[str, float], u_pairs: float = 1e6) -> tuple[dict[str, Any], Any]:
    import pandas as pd
    from splink import DuckDBAPI, Linker, block_on

    t = time.perf_counter()
    frames = [pd.DataFrame(listings), pd.DataFrame(units)]
    linker = Linker(frames, settings(), db_api=DuckDBAPI(),
                    input_table_aliases=["listings", "units"])
    training = linker.training
    steps = [
        ("prior", lambda: training.estimate_probability_two_random_records_match(
            [block_on("phone"), block_on("postcode", "house_number", "name_tokens[1]")],
            recall=0.8)),
        ("u", lambda: training.estimate_u_using_random_sampling(max_pairs=u_pairs, seed=1)),
        ("em_address", lambda: training.estimate_parameters_using_expectation_maximisation(
            block_on("postcode", "house_number"))),
        ("em_phone", lambda: training.estimate_parameters_using_expectation_maximisation(
            block_on("phone"))),
    ]
    for name, step in steps:
        s = time.perf_counter()
        step()
        seconds[f"train_{name}"] = round(time.perf_counter() - s, 3)
        print(f"[splink] {name}: {seconds[f'train_{name}']:.1f} s", file=sys.stderr,
              flush=True)
    seconds["train"] = round(time.perf_counter() - t, 3)

    t = time.perf_counter()
    scored = linker.inference.predict(threshold_match_probability=threshold)
    # One unit per listing: the most probable (ties: the lower unit id).
    best = scored.as_duckdbpyrelation().query("pairs", """
        SELECT lid, uid, p FROM (
          SELECT CASE WHEN source_dataset_l = 'listings' THEN unique_id_l ELSE unique_id_r
                 END AS lid,
                 CASE WHEN source_dataset_l = 'listings' THEN unique_id_r ELSE unique_id_l
                 END AS uid,
                 match_probability AS p
          FROM pairs)
        QUALIFY row_number() OVER (PARTITION BY lid ORDER BY p DESC, uid) = 1""").fetchall()
    pairs_scored = scored.as_duckdbpyrelation().count("*").fetchone()[0]
    seconds["predict"] = round(time.perf_counter() - t, 3)
    model = {"probability_two_random_records_match":
             linker._settings_obj._probability_two_random_records_match,
             "pairs_above_threshold": pairs_scored}
    return {lid: [uid, round(p, 6)] for lid, uid, p in best}, model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.splink_model", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", type=Path, required=True, help="store prepared by horeca")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--threshold", type=float, default=0.9)
    parser.add_argument("--u-pairs", type=float, default=1e6,
                        help="random pairs for estimating u")
    args = parser.parse_args(argv)
    require_splink()
    import logging

    logging.getLogger("splink").setLevel(logging.WARNING)
    started = time.perf_counter()
    seconds: dict[str, float] = {}
    listings, units = read_store(args.db)
    seconds["prepare"] = round(time.perf_counter() - started, 3)
    predictions, model = link(listings, units, args.threshold, seconds, args.u_pairs)
    report = {"predictions": predictions, "seconds": seconds, "model": model,
              "listings": len(listings), "units": len(units), "threshold": args.threshold,
              "wall_s": round(time.perf_counter() - started, 3),
              "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    args.out.write_text(json.dumps(report) + "\n")
    print(f"[splink] {len(predictions)} of {len(listings)} listings matched "
          f"in {report['wall_s']:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
