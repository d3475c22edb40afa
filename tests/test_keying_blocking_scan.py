"""The register scan's numpy membership test (keying/blocking.py, `Blocker.offer_batch`)
files every unit exactly where the blocking rules say, checked against a plain reading of
those rules: for each unit, which of the places' keys it has; a key shared by more units
than its kind's limit is dropped; a name word with a postcode makes a local key."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from horeca.keying.blocking import KEY_SEP, KIND_BIT, Blocker, block, unit_keys
from horeca.keying.config import DEFAULT_CONFIG
from horeca.keying.consolidate import consolidate
from horeca.keying.records import prepare_listing

# Small limits, so that a few generated units already make keys too common.
BLOCKING = replace(DEFAULT_CONFIG.blocking, max_units_per_token=3,
                   max_units_per_local_token=2, max_units_per_name=2,
                   max_units_per_phone=2, max_units_per_address=2)
WORDS = ["parc", "marcel", "brasserie", "zanzibar", "lotus", "atomium"]
STREETS = ["Rue Haute", "Rue de la Loi", "Avenue Louise"]
POSTCODES = ["1000", "1050"]
PHONES = ["+3222222222", "+3223333333"]

PLACES = consolidate([prepare_listing(
    {"id": f"gusto:{k}", "source": "gusto", "source_id": str(k), "name": name,
     "street": street, "house_number": number, "postcode": postcode, "phone": phone,
     "lat": None, "lon": None})
    for k, (name, street, number, postcode, phone) in enumerate([
        ("Brasserie du Parc", "Rue de la Loi", "17", "1000", None),
        ("Chez Marcel", "Rue Haute", "3", "1050", "+3222222222"),
        ("Lotus Zanzibar", None, None, None, "+3223333333"),
        ("Atomium Parc Marcel", "Avenue Louise", "100", "1050", None)])],
    DEFAULT_CONFIG.consolidation)


@st.composite
def units(draw) -> list[dict]:
    out = []
    for k in range(draw(st.integers(0, 25))):
        words = draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=3))
        seat = draw(st.booleans())
        out.append({
            "unit_id": f"2.000.000.{k:03d}", "enterprise_number": f"0{k:09d}",
            "names": json.dumps([{"name": " ".join(words), "type": "commercial"}]),
            "street_fr": draw(st.sampled_from(STREETS)),
            "house_number": draw(st.sampled_from(["3", "17", "100", "5"])),
            "postcode": draw(st.sampled_from(POSTCODES)),
            "seat_street_fr": "Rue Haute" if seat else None,
            "seat_house_number": "3" if seat else None,
            "seat_postcode": draw(st.sampled_from(POSTCODES)) if seat else None,
            "phones": json.dumps(draw(st.lists(st.sampled_from(PHONES), max_size=1))),
            "lat": None, "lon": None})
    return out


def plain_candidates(units: list[dict]) -> list[dict[str, int]]:
    """Per place: {unit id: reason mask}, each unit looked up key by key."""
    blocker = Blocker(PLACES, BLOCKING, sample_size=0)
    limits = blocker._limits
    filed: dict[tuple[str, object], list[str]] = defaultdict(list)
    for unit in units:
        mine = set(unit_keys(unit).split(KEY_SEP))
        has = [kind_key for encoded, kind_key in blocker.wanted.items() if encoded in mine]
        for kind, key in has:
            if kind != "postcode":
                filed[(kind, key)].append(unit["unit_id"])
        codes = [key for kind, key in has if kind == "postcode"]
        for word in [key for kind, key in has if kind == "token"]:
            for code in codes:
                if (code, word) in blocker.index["local"]:
                    filed[("local", (code, word))].append(unit["unit_id"])
    found: list[dict[str, int]] = [{} for _ in PLACES]
    for (kind, key), ids in filed.items():
        if len(ids) > limits[kind]:
            continue  # too common to say anything
        for i in blocker.index[kind][key]:
            for uid in ids:
                found[i][uid] = found[i].get(uid, 0) | KIND_BIT[kind]
    return found


@settings(max_examples=150, deadline=None)
@given(register=units())
def test_the_scan_files_each_unit_where_a_key_by_key_reading_of_the_rules_does(
        register: list[dict]) -> None:
    cands = block(PLACES, register, BLOCKING, sample_size=0)
    found = [{cands.units[j].unit_id: mask for j, mask in pairs} for pairs in cands.pairs]
    assert found == plain_candidates(register)
    assert cands.units_scanned == len(register)


def test_the_generated_registers_make_keys_too_common_and_local_keys() -> None:
    # the property above is only worth something if both rules are exercised
    register = [{"unit_id": f"u{k}", "names": json.dumps([{"name": "Parc Marcel"}]),
                 "street_fr": "Rue Haute", "house_number": "9", "postcode": "1050"}
                for k in range(6)]
    cands = block(PLACES, register, BLOCKING, sample_size=0)
    assert cands.stats["token"]["dropped_common_keys"] >= 1
    assert cands.stats["local"]["dropped_common_keys"] >= 1
    few = block(PLACES, register[:2], BLOCKING, sample_size=0)
    assert few.stats["local"]["keys"] >= 1 and few.stats["local"]["pairs"] >= 1


def test_no_neighbours_kept_when_the_settings_keep_none() -> None:
    register = [{"unit_id": f"u{k}", "names": json.dumps([{"name": f"Other {k}"}]),
                 "lat": 50.8466, "lon": 4.3528} for k in range(5)]
    places = consolidate([prepare_listing(
        {"id": "gusto:9", "source": "gusto", "source_id": "9", "name": "Chez Nous",
         "street": None, "house_number": None, "postcode": None, "phone": None,
         "lat": 50.8466, "lon": 4.3528})], DEFAULT_CONFIG.consolidation)
    none = replace(BLOCKING, max_nearest=0, max_nearest_with_address=0)
    assert block(places, register, none, sample_size=0).pairs == [[]]
    some = block(places, register, BLOCKING, sample_size=0)
    assert len(some.pairs[0]) == 5
