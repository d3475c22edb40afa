"""Deciding and assigning: match / doubt / no-match with reasons, one unit per place unless
the places are one business, reviewed verdicts, and blocking that finds the right units."""

from __future__ import annotations

import json
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from horeca.keying.blocking import block
from horeca.keying.config import DEFAULT_CONFIG, MODEL_FIELDS
from horeca.keying.consolidate import build_place, consolidate
from horeca.keying.engine import Labels, key_places
from horeca.keying.records import prepare_listing

# Fixed, plausible weights so that these small scenes do not depend on EM's estimates.
FIXED = {
    "name": {"A": (0.80, 0.0005), "B": (0.10, 0.01), "L": (0.06, 0.70), "F": (0.04, 0.2895)},
    "location": {"A": (0.85, 0.0005), "C": (0.05, 0.001), "N": (0.03, 0.004),
                 "S": (0.03, 0.01), "P": (0.02, 0.08), "F": (0.02, 0.9045)},
    "phone": {"A": (0.9, 0.0005), "F": (0.1, 0.9995)},
    "web": {"A": (0.9, 0.0005), "F": (0.1, 0.9995)},
    "vat": {"A": (0.95, 0.0005), "F": (0.05, 0.9995)},
    "activity": {"A": (0.97, 0.3), "F": (0.03, 0.7)},
}
CONFIG = replace(DEFAULT_CONFIG, fixed_weights=FIXED,
                 scoring=replace(DEFAULT_CONFIG.scoring, registered_share=0.8))
assert set(FIXED) == set(MODEL_FIELDS)


def unit(uid: str, name: str, street: str, number: str, *, lat: float, lon: float = 4.35,
         phones: list[str] | None = None, names_type: str = "commercial",
         horeca: int = 1) -> dict:
    return {"unit_id": uid, "enterprise_number": "0" + uid[-9:],
            "names": json.dumps([{"name": name, "type": names_type}]),
            "street_fr": street, "house_number": number, "postcode": "1000",
            "phones": json.dumps(phones or []),
            "nace": json.dumps([{"code": "56101" if horeca else "62010"}]),
            "horeca": horeca, "lat": lat, "lon": lon}


def listing(lid: str, name: str, street: str | None, number: str | None, *, lat: float,
            lon: float = 4.35, phone: str | None = None) -> dict:
    source, _, sid = lid.partition(":")
    return {"id": lid, "source": source, "source_id": sid, "name": name, "street": street,
            "house_number": number, "postcode": "1000" if street else None, "phone": phone,
            "lat": lat, "lon": lon}


FILLER = [unit(f"2.000.000.{k:03d}", f"Filler Company {k} SRL", "Rue Haute", str(100 + k),
               lat=50.80 + k / 1000, names_type="legal", horeca=0) for k in range(60)]


def run(listings: list[dict], units: list[dict], labels: Labels | None = None):
    places = consolidate([prepare_listing(r) for r in listings], CONFIG.consolidation)
    cands = block(places, [*units, *FILLER], CONFIG.blocking, sample_size=40)
    result = key_places(places, cands, CONFIG, labels)
    by_listing = {lid: d for p in places for lid in p.listing_ids
                  for d in result.decisions if d.place_id == p.id}
    return by_listing, result


def test_a_corroborated_listing_matches_with_a_plain_reason() -> None:
    decisions, result = run(
        [listing("gusto:1", "Brasserie du Parc", "Rue de la Loi", "17", lat=50.846)],
        [unit("2.100.000.001", "Brasserie du Parc", "Rue de la Loi", "17", lat=50.846)])
    d = decisions["gusto:1"]
    assert d.outcome == "match" and d.unit_id == "2.100.000.001"
    assert d.grades.startswith("name A, street A, number A, postcode A")
    assert "agrees on name" in d.reason and d.score >= CONFIG.scoring.match_probability
    c = d.candidates[0]
    # the waterfall adds up to the candidate's log-odds
    assert abs(sum(c["waterfall"].values()) - _log2_odds(c["probability"])) < 0.1
    assert result.counts == {"match": 1, "doubt": 0, "no-match": 0}


def _log2_odds(p: float) -> float:
    import math
    return math.log2(p / (1 - p))


def test_a_listing_nothing_corroborates_is_no_match() -> None:
    decisions, _ = run(
        [listing("gusto:1", "Chez Marcel", "Rue Neuve", "3", lat=50.875)],
        [unit("2.100.000.001", "Brasserie du Parc", "Rue de la Loi", "17", lat=50.846)])
    assert decisions["gusto:1"].outcome == "no-match"
    assert decisions["gusto:1"].unit_id is None


def test_same_door_but_a_different_trade_name_is_a_doubt_with_candidates() -> None:
    decisions, _ = run(
        [listing("gusto:1", "Sushi Tokyo", "Rue de la Loi", "17", lat=50.846)],
        [unit("2.100.000.001", "Brasserie du Parc", "Rue de la Loi", "17", lat=50.846)])
    d = decisions["gusto:1"]
    assert d.outcome == "doubt"
    assert "differs on name" in d.reason
    assert d.candidates and "grades" in d.candidates[0] and len(d.candidates) <= 3


def test_premises_match_when_the_register_holds_only_a_legal_name() -> None:
    decisions, _ = run(
        [listing("gusto:1", "Sushi Tokyo", "Rue de la Loi", "17", lat=50.846)],
        [unit("2.100.000.001", "Dupont Invest SRL", "Rue de la Loi", "17", lat=50.846,
              names_type="legal")])
    d = decisions["gusto:1"]
    assert d.outcome == "match" and d.reason.startswith("Premises match")


def test_two_places_claiming_one_unit_the_better_keeps_it_the_other_doubts() -> None:
    decisions, _ = run(
        [listing("gusto:1", "Brasserie du Parc", "Rue de la Loi", "17", lat=50.846,
                 phone="+3225135151"),
         listing("table:2", "Brasserie du Parc", "Avenue Louise", "300", lat=50.820)],
        [unit("2.100.000.001", "Brasserie du Parc", "Rue de la Loi", "17", lat=50.846,
              phones=["+3225135151"])])
    assert decisions["gusto:1"].outcome == "match"
    other = decisions["table:2"]
    assert other.outcome in ("doubt", "no-match")
    assert other.unit_id is None


def test_the_same_premises_listed_twice_may_share_the_unit() -> None:
    # a hotel and its restaurant: one door, each named in the register
    unit_row = unit("2.100.000.001", "Hotel Royal", "Rue de la Loi", "17", lat=50.846)
    unit_row["names"] = json.dumps([{"name": "Hotel Royal", "type": "commercial"},
                                    {"name": "Restaurant Le Jardin", "type": "commercial"}])
    decisions, _ = run(
        [listing("stay:1", "Hotel Royal", "Rue de la Loi", "17", lat=50.846),
         listing("gusto:2", "Le Jardin", "Rue de la Loi", "17", lat=50.84602)],
        [unit_row])
    assert decisions["stay:1"].unit_id == decisions["gusto:2"].unit_id == "2.100.000.001"
    assert decisions["gusto:2"].outcome == "match"


def test_registered_under_verdict_forces_the_match() -> None:
    places = consolidate([prepare_listing(listing("gusto:1", "Sushi Tokyo", "Rue de la Loi",
                                                  "17", lat=50.846))], CONFIG.consolidation)
    labels = Labels(registered_under={places[0].id: "2.100.000.001"})
    decisions, _ = run(
        [listing("gusto:1", "Sushi Tokyo", "Rue de la Loi", "17", lat=50.846)],
        [unit("2.100.000.001", "Brasserie du Parc", "Rue de la Loi", "17", lat=50.846)],
        labels)
    d = decisions["gusto:1"]
    assert d.outcome == "match" and d.unit_id == "2.100.000.001"
    assert "reviewer" in d.reason


def test_keying_is_deterministic() -> None:
    rows = [listing("gusto:1", "Brasserie du Parc", "Rue de la Loi", "17", lat=50.846),
            listing("gusto:2", "Chez Marcel", None, None, lat=50.8521)]
    units = [unit("2.100.000.001", "Brasserie du Parc", "Rue de la Loi", "17", lat=50.846),
             unit("2.100.000.002", "Chez Marcel", "Rue Neuve", "3", lat=50.8520)]
    first, _ = run(rows, units)
    second, _ = run(list(reversed(rows)), list(reversed(units)))
    assert {k: (d.outcome, d.unit_id, d.score) for k, d in first.items()} == \
        {k: (d.outcome, d.unit_id, d.score) for k, d in second.items()}


def test_blocking_finds_by_phone_name_address_and_distance_and_drops_common_keys() -> None:
    place = build_place([prepare_listing(listing("gusto:1", "Zanzibar Coconut", "Rue Neuve",
                                                 "3", lat=50.8520, phone="+3222222222"))])
    units = [unit("2.1", "Other Name", "Rue X", "1", lat=50.90, phones=["+3222222222"]),
             unit("2.2", "Zanzibar", "Rue Y", "2", lat=50.91),
             unit("2.3", "Another", "Rue Neuve", "3", lat=50.92),
             unit("2.4", "Near Shop", "Rue Z", "9", lat=50.85201)]
    # a word so common it identifies nothing
    common = [unit(f"3.{k}", f"Coconut Trading {k}", "Rue W", str(k), lat=50.7)
              for k in range(CONFIG.blocking.max_units_per_local_token + 5)]
    cands = block([place], iter([*units, *common]), CONFIG.blocking, sample_size=10)
    found = {cands.units[j].unit_id: mask for j, mask in cands.pairs[0]}
    assert {"2.1", "2.2", "2.3", "2.4"} <= set(found)
    assert not any(uid.startswith("3.") for uid in found)
    assert cands.stats["token"]["dropped_common_keys"] >= 1
    assert cands.units_scanned == len(units) + len(common)


def test_a_register_offered_in_batches_out_of_order_gives_the_same_candidates() -> None:
    rows = [listing("gusto:1", "Brasserie du Parc", "Rue de la Loi", "17", lat=50.846),
            listing("gusto:2", "Chez Marcel", None, None, lat=50.8521, phone="+3222222222")]
    places = consolidate([prepare_listing(r) for r in rows], CONFIG.consolidation)
    units = [unit("2.100.000.001", "Brasserie du Parc", "Rue de la Loi", "17", lat=50.846),
             unit("2.100.000.002", "Other", "Rue X", "1", lat=50.80, phones=["+3222222222"]),
             *FILLER,
             *[unit(f"3.{k}", f"Parc Trading {k}", "Rue W", str(k), lat=50.7)
               for k in range(30)]]
    whole = block(places, units, CONFIG.blocking, sample_size=20, seed=5)
    split = _split_scan(places, units, 7, sample_size=20)

    def found(c):
        return [{(c.units[j].unit_id, mask) for j, mask in pairs} for pairs in c.pairs]

    assert found(split) == found(whole)
    assert [u.unit_id for u in split.sample] == [u.unit_id for u in whole.sample]
    assert split.token_df == whole.token_df and split.units_scanned == whole.units_scanned


def _split_scan(places, units, slice_size: int, sample_size: int = 5):
    """The register offered in slices of `slice_size` units, out of order (every other
    slice, then the ones skipped), each at its own positions."""
    from horeca.keying.blocking import Blocker, prepare_rows

    firsts = list(range(0, len(units), slice_size))
    blocker = Blocker(places, CONFIG.blocking, sample_size=sample_size, seed=5)
    for first in [*firsts[::2], *firsts[1::2]]:
        blocker.offer_rows(units[first:first + slice_size], first_position=first)
    return blocker.finish(prepare_rows(units))


def test_neighbours_at_the_same_distance_go_to_the_earlier_units_however_the_scan_is_split(
        ) -> None:
    # A place without an address keeps its `max_nearest` neighbours; 25 units share one pin
    # (one building), so which of them are kept is decided by their order in the register.
    rows = [listing("gusto:1", "Chez Marcel", None, None, lat=50.8521)]
    places = consolidate([prepare_listing(r) for r in rows], CONFIG.consolidation)
    units = [unit(f"4.{k}", f"Tenant {k} Trading", "Rue Y", str(k), lat=50.8522,
                  names_type="legal", horeca=0) for k in range(25)]
    keep = CONFIG.blocking.max_nearest
    expected = [f"4.{k}" for k in range(keep)]
    whole = block(places, units, CONFIG.blocking, sample_size=5, seed=5)
    assert sorted((whole.units[j].unit_id for j, _ in whole.pairs[0]),
                  key=lambda u: int(u[2:])) == expected
    for size in (1, 3, 10):
        split = _split_scan(places, units, size)
        assert [split.units[j].unit_id for j, _ in split.pairs[0]] == \
            [whole.units[j].unit_id for j, _ in whole.pairs[0]]


@settings(max_examples=300, deadline=None)
@given(values=st.lists(st.one_of(st.text(max_size=12), st.integers(), st.none()), max_size=4),
       ascii_only=st.booleans())
def test_json_lists_read_without_decoding_give_the_same_strings(values: list,
                                                                ascii_only: bool) -> None:
    from horeca.keying.records import json_list, json_strings

    text = json.dumps(values, ensure_ascii=ascii_only)
    assert [v for v in json_strings(text) if isinstance(v, str)] == \
        [v for v in json_list(text) if isinstance(v, str)]
