"""Priority scoring: pure functions, ordering properties, configurable weights."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from horeca.errors import UserError
from horeca.exports.priority import (
    DEFAULT_WEIGHTS,
    Signals,
    activity_gap,
    activity_score,
    days_between,
    declared_level,
    doubt_weakness,
    load_weights,
    price_level,
    priority_score,
    rank_key,
)

reviews = st.integers(min_value=0, max_value=100_000)
days = st.floats(min_value=0, max_value=3650, allow_nan=False)


@pytest.mark.parametrize(("text", "level"), [
    ("€", 1), ("€€", 2), ("$$$", 3), ("€€€€", 4), ("€€-€€€", 2.5), ("€8-16", 1), ("€10-20", 2),
    ("20 - 30 EUR", 2), ("€45", 3), ("100€", 4), ("moderate", 2), ("Inexpensive", 1),
    ("very expensive", 4), ("", None), (None, None), ("see menu", None),
])
def test_price_level_reads_symbols_ranges_amounts_and_words(text, level) -> None:
    assert price_level(text) == level


@given(st.text(max_size=40))
def test_price_level_never_fails_and_stays_between_1_and_4(text: str) -> None:
    level = price_level(text)
    assert level is None or 1 <= level <= 4


@given(reviews, reviews, days)
def test_more_reviews_never_lower_activity(a: int, b: int, d: float) -> None:
    low, high = sorted((a, b))
    s_low = Signals(reviews_by_source={"x": low}, days_since_seen=d)
    s_high = Signals(reviews_by_source={"x": high}, days_since_seen=d)
    assert activity_score(s_low) <= activity_score(s_high)


@given(reviews, days, days)
def test_recently_seen_places_are_more_active(n: int, d1: float, d2: float) -> None:
    near, far = sorted((d1, d2))
    assert activity_score(Signals({"x": n}, days_since_seen=near)) >= activity_score(
        Signals({"x": n}, days_since_seen=far))


@given(st.dictionaries(st.sampled_from("abcde"), reviews, max_size=5),
       st.integers(0, 400), st.one_of(st.none(), st.sampled_from(["€", "€€€€", "moderate"])),
       st.one_of(st.none(), days), st.integers(1, 6))
def test_activity_is_between_0_and_100(by_source, rooms, price, seen, platforms) -> None:
    score = activity_score(Signals(by_source, rooms=rooms or None, price_range=price,
                                   platforms=platforms, days_since_seen=seen))
    assert 0 <= score <= 100


def test_more_platforms_raise_activity_until_saturation() -> None:
    one = activity_score(Signals({"a": 50}, platforms=1, days_since_seen=0))
    three = activity_score(Signals({"a": 50}, platforms=3, days_since_seen=0))
    five = activity_score(Signals({"a": 50}, platforms=5, days_since_seen=0))
    assert one < three == five


def test_missing_reviews_count_as_no_evidence_of_activity() -> None:
    unknown = activity_score(Signals({}, days_since_seen=0))
    busy = activity_score(Signals({"a": 300}, days_since_seen=0))
    assert unknown < 30 < busy


def test_rooms_and_price_only_count_where_listed() -> None:
    """A restaurant without rooms is not penalised against one whose listing has none."""
    base = Signals({"a": 200}, days_since_seen=0)
    with_small_hotel = Signals({"a": 200}, rooms=1, days_since_seen=0)
    assert activity_score(with_small_hotel) < activity_score(base)


@given(st.floats(0, 100), st.one_of(st.none(), st.floats(0, 500)),
       st.one_of(st.none(), st.floats(0, 1e8)))
def test_gap_is_none_without_declarations_and_within_bounds(activity, workers, turnover):
    gap = activity_gap(activity, workers, turnover)
    if workers is None and turnover is None:
        assert gap is None
    else:
        assert gap is not None and 0 <= gap <= round(activity, 1) + 0.05


def test_declaring_nothing_leaves_the_whole_activity_as_gap() -> None:
    assert activity_gap(80.0, 0, None) == 80.0
    assert activity_gap(80.0, 0, 0) == 80.0


def test_more_declared_workers_shrink_the_gap() -> None:
    gaps = [activity_gap(90.0, w, None) for w in (0, 1, 3, 10, 50)]
    assert gaps == sorted(gaps, reverse=True) and gaps[-1] == 0
    assert declared_level(None, None) is None


@given(st.floats(0, 100), st.floats(0, 100))
def test_no_match_ranks_by_activity(a: float, b: float) -> None:
    low, high = sorted((a, b))
    assert priority_score("no-match", low, None) <= priority_score("no-match", high, None)


@given(st.floats(0, 100), st.floats(0, 1), st.floats(0, 1))
def test_weaker_doubts_rank_higher_at_equal_activity(activity, w1, w2) -> None:
    lo, hi = sorted((w1, w2))
    assert priority_score("doubt", activity, None, lo) <= priority_score("doubt", activity,
                                                                         None, hi)


@given(st.floats(0, 100))
def test_a_plain_match_never_outranks_an_equally_active_no_match(activity: float) -> None:
    assert priority_score("match", activity, 0.0) <= priority_score("no-match", activity, None)


def test_an_under_declaring_match_outranks_a_quiet_no_match() -> None:
    busy_match = priority_score("match", 90.0, activity_gap(90.0, 0, None))
    quiet_no_match = priority_score("no-match", 30.0, None)
    assert busy_match > quiet_no_match


def test_doubt_weakness_follows_the_band() -> None:
    band = (0.1, 0.99)
    assert doubt_weakness(0.1, band) == 1.0
    assert doubt_weakness(0.99, band) == 0.0
    assert doubt_weakness(0.5, None) == 0.5
    assert 0 < doubt_weakness(0.5, band) < 1


def test_rank_key_breaks_ties_by_outcome_then_place_id() -> None:
    keys = [rank_key(50.0, "match", "a"), rank_key(50.0, "no-match", "b"),
            rank_key(60.0, "match", "c"), rank_key(50.0, "no-match", "a")]
    assert [k[2] for k in sorted(keys)] == ["c", "a", "b", "a"]


def test_days_between_handles_timestamps_and_missing_values() -> None:
    assert days_between("2026-07-03T08:00:00+00:00", "2026-10-01T08:00:00+00:00") == 90
    assert days_between(None, "2026-10-01") is None
    assert days_between("2026-10-02", "2026-10-01") == 0


def test_weights_load_from_toml_and_reject_mistakes(tmp_path: Path) -> None:
    good = tmp_path / "w.toml"
    good.write_text("[priority]\nreviews = 0.6\ndoubt_band = [0.1, 0.99]\n")
    weights = load_weights(good)
    assert weights.reviews == 0.6 and weights.doubt_band == (0.1, 0.99)
    assert weights.recency == DEFAULT_WEIGHTS.recency
    assert load_weights(None) is DEFAULT_WEIGHTS
    for text, needle in [("review = 1\n", "unknown priority weight"),
                         ("reviews = -1\n", "must be a number"),
                         ("doubt_band = [1]\n", "doubt_band"),
                         ("price_thresholds = [30, 15, 60]\n", "price_thresholds"),
                         ("reviews = \n", "malformed TOML")]:
        bad = tmp_path / "bad.toml"
        bad.write_text(text)
        with pytest.raises(UserError, match=needle) as err:
            load_weights(bad)
        assert str(bad) in str(err.value)


def test_weights_change_the_ranking(tmp_path: Path) -> None:
    hotel = Signals({"a": 20}, rooms=60, days_since_seen=0)
    bistro = Signals({"a": 120}, days_since_seen=0)
    assert activity_score(hotel) < activity_score(bistro)
    path = tmp_path / "rooms.toml"
    path.write_text("rooms = 3.0\n")
    heavy_rooms = load_weights(path)
    assert activity_score(hotel, heavy_rooms) > activity_score(bistro, heavy_rooms)


def test_the_weights_file_in_the_methodology_page_matches_the_defaults(tmp_path) -> None:
    """docs/methodology.md shows the defaults as a TOML file: it must stay true."""
    page = (Path(__file__).resolve().parent.parent / "docs" / "methodology.md").read_text(
        encoding="utf-8")
    priority = page.split("\n## Priority", 1)[1]
    block = priority.split("```toml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "doc.toml"
    path.write_text(block, encoding="utf-8")
    assert load_weights(path) == DEFAULT_WEIGHTS
