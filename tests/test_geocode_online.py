"""Online geocoding: vcrpy cassettes (record mode none) and a local Nominatim emulator.

No test touches the network: cassettes replay hand-written, Nominatim-shaped answers for
https://nominatim.openstreetmap.org (vcrpy intercepts before any socket is opened), and
the emulator listens on 127.0.0.1 only.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
import vcr
from typer.testing import CliRunner

from horeca.cli import app
from horeca.errors import UserError
from horeca.geocode.config import GeocodeConfig, config_from_dict, load_config
from horeca.geocode.emulator import serve_nominatim
from horeca.geocode.loaders import SEGMENT_COLUMNS, import_segments
from horeca.geocode.model import AddressQuery
from horeca.geocode.online import OnlineGeocoder, Throttle
from horeca.geocode.run import geocode_pending
from horeca.store import open_db, upsert

CASSETTES = Path(__file__).parent / "cassettes"
UA = "horeca-tests/0.1 (geocoding-tests@example.org)"
GAZETTEER = ",".join(SEGMENT_COLUMNS) + """
Rue de la Loi,Wetstraat,1000,Bruxelles,Brussel,1,101,50.8460,4.3600,50.8420,4.3800
"""

replay = vcr.VCR(cassette_library_dir=str(CASSETTES), record_mode="none",
                 match_on=("method", "scheme", "host", "port", "path", "query"))


@pytest.fixture()
def db(tmp_path: Path) -> sqlite_utils.Database:
    database = open_db(tmp_path / "h.db")
    path = tmp_path / "gazetteer.csv"
    path.write_text(GAZETTEER)
    import_segments(database, path)
    return database


def add_listings(db: sqlite_utils.Database, *addresses: tuple[str, str, str]) -> None:
    rows = [{"id": f"s:{i}", "source": "s", "source_id": str(i), "street": street,
             "house_number": number, "postcode": postcode, "lat": None, "lon": None}
            for i, (street, number, postcode) in enumerate(addresses)]
    upsert(db, "listings", rows, key="id")


def entity(db: sqlite_utils.Database, i: int) -> dict[str, Any]:
    return db["entity_geocodes"].get(("listing", f"s:{i}"))


class RecordingSleep:
    """Backoff sleeps are recorded instead of slept: the waits asked for are the point."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


# ---------------------------------------------------------------- cassettes (public API)

def test_structured_answers_and_not_found_are_cached_so_a_rerun_sends_nothing(
        db: sqlite_utils.Database) -> None:
    add_listings(db, ("Rue Neuve", "2", "1000"), ("Rue Imaginaire", "9 bte 1", "1000"),
                 ("rue neuve", "2 bus 3", "1000"), ("Wetstraat", "51", "1000"))
    config = GeocodeConfig(online=True, user_agent=UA)
    with replay.use_cassette("nominatim_found_and_not_found.yaml") as cassette:
        first = geocode_pending(db, config=config)
        assert cassette.play_count == 2          # two distinct addresses needed online
        assert first.online_requests == 2 and first.online_queries == 2
        assert first.by_provider == {"nominatim": 2, "gazetteer": 2}
        again = geocode_pending(db, config=config, redo_all=True)
        assert cassette.play_count == 2          # nothing sent: every answer was cached
    assert again.online_requests == 0 and again.cache_hits == 5   # 3 gazetteer + 2 online
    neuve = entity(db, 0)
    assert neuve["provider"] == "nominatim" and neuve["precision"] == "house_number"
    assert (neuve["lat"], neuve["lon"]) == (50.8519, 4.3561)
    assert entity(db, 2)["geocode_key"] == neuve["geocode_key"]
    cached = db["geocodes"].get(neuve["geocode_key"])
    assert cached["method"] == "online" and "Rue Neuve" in cached["matched"]
    assert '"street": "2 rue neuve"' in cached["query"]
    # Not found online: cached as such; the gazetteer's postcode centroid stays the answer.
    missing = db["geocodes"].get("nominatim#rue imaginaire|9|1000||be")
    assert missing["status"] == "not_found"
    assert entity(db, 1)["precision"] == "postcode"
    assert again.attribution and "OpenStreetMap" in again.attribution


def test_service_errors_are_retried_with_backoff_and_rate_limits_recorded_per_address(
        db: sqlite_utils.Database) -> None:
    add_listings(db, ("Rue du Midi", "10", "1000"), ("Rue Haute", "300", "1180"),
                 ("Wetstraat", "51", "1000"))
    sleep = RecordingSleep()
    config = GeocodeConfig(online=True, user_agent=UA, max_retries=1,
                           retry_backoff_seconds=1.0)
    geocoder = OnlineGeocoder(config, sleep=sleep)
    with replay.use_cassette("nominatim_errors.yaml") as cassette:
        summary = geocode_pending(db, config=config, online_geocoder=geocoder)
        assert cassette.all_played
    assert summary.online_requests == 4
    assert sleep.waits == [1.0, 1.0]             # after the 503, after the first 429
    midi = entity(db, 0)
    assert midi["provider"] == "nominatim" and midi["precision"] == "street"
    haute = entity(db, 1)
    assert haute["lat"] is None and haute["status"] == "error"
    assert haute["error"].startswith("rate_limited")
    assert summary.online_errors == {"rate_limited": 1}
    assert summary.failures == {"rate_limited": 1}
    assert db["geocodes"].get("nominatim#rue haute|300|1180||be")["status"] == "error"
    assert entity(db, 2)["provider"] == "gazetteer"   # placed offline, never sent


def test_errors_are_tried_again_on_the_next_run(db: sqlite_utils.Database) -> None:
    add_listings(db, ("Rue Haute", "300", "1180"))
    config = GeocodeConfig(online=True, user_agent=UA, max_retries=0)
    with serve_nominatim(fail=[503]) as (domain, state):
        local = GeocodeConfig(online=True, user_agent=UA, max_retries=0, domain=domain,
                              scheme="http", min_delay_seconds=0.05,
                              retry_backoff_seconds=0.05)
        first = geocode_pending(db, config=local)
        assert first.online_errors == {"unavailable": 1}
        second = geocode_pending(db, config=local)
        assert second.online_requests == 1 and not second.online_errors
        assert len(state.requests) == 2
    assert entity(db, 0)["precision"] == "house_number"
    assert config.provider_id == "nominatim" and local.provider_id == f"nominatim@{domain}"


# ---------------------------------------------------------------- policy checks

@pytest.mark.parametrize("agent", [None, "", "geopy/2.4", "python-requests/2.31",
                                   "horeca-without-contact"])
def test_going_online_needs_an_identifying_user_agent(db: sqlite_utils.Database,
                                                      agent: str | None) -> None:
    add_listings(db, ("Rue Neuve", "2", "1000"))
    with replay.use_cassette("nominatim_found_and_not_found.yaml") as cassette:
        with pytest.raises(UserError, match="user agent"):
            geocode_pending(db, config=GeocodeConfig(online=True, user_agent=agent))
        assert cassette.play_count == 0


def test_public_nominatim_floors_cannot_be_configured_away(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="1 request per second"):
        config_from_dict({"min_delay_seconds": 0.5})
    with pytest.raises(UserError, match="bulk"):
        config_from_dict({"max_requests_per_run": 0})
    own = config_from_dict({"domain": "nominatim.internal.example", "min_delay_seconds": 0.1,
                            "max_requests_per_run": 0})
    assert own.provider_id == "nominatim@nominatim.internal.example"
    with pytest.raises(UserError, match="unknown setting"):
        config_from_dict({"onlin": True})
    with pytest.raises(UserError, match="wrong type"):
        config_from_dict({"online": "yes"})
    path = tmp_path / "horeca.toml"
    path.write_text('[keying]\nx = 1\n[geocode]\nonline = true\nuser_agent = "a (b@c.d)"\n'
                    '[geocode.provider_options]\nproxies = {}\n')
    loaded = load_config(path)
    assert loaded.online and loaded.provider_options == {"proxies": {}}


def test_cli_refuses_online_without_user_agent(tmp_path: Path) -> None:
    db_path = tmp_path / "cli.db"
    database = open_db(db_path)
    add_listings(database, ("Rue Neuve", "2", "1000"))
    result = CliRunner().invoke(app, ["--db", str(db_path), "geocode", "--online"])
    assert result.exit_code != 0
    said = result.output + str(result.exception or "")
    assert "going online needs an identifying user agent" in said


# ---------------------------------------------------------------- local emulator

def test_requests_are_spaced_one_second_apart_and_carry_the_user_agent(
        db: sqlite_utils.Database, assert_rate_at_most) -> None:
    add_listings(db, *[(f"Rue Numero {n}", "1", "1000") for n in range(4)])
    with serve_nominatim() as (domain, state):
        config = GeocodeConfig(online=True, user_agent=UA, domain=domain, scheme="http",
                               min_delay_seconds=1.0)
        summary = geocode_pending(db, config=config)
        assert summary.online_requests == 4 == len(state.requests)
        assert_rate_at_most([r.at for r in state.requests], 1.0)
        assert {r.user_agent for r in state.requests} == {UA}
        first = state.requests[0].params
        assert first["format"] == "jsonv2" and first["postalcode"] == "1000"
        assert first["street"] == "1 rue numero 0" and first["country"] == "Belgium"
        assert "q" not in first                  # structured, never free text
        again = geocode_pending(db, config=config, redo_all=True)
        assert again.online_requests == 0 and len(state.requests) == 4


def test_two_geocoders_in_two_threads_share_the_process_wide_clock(
        assert_rate_at_most) -> None:
    with serve_nominatim() as (domain, state):
        config = GeocodeConfig(online=True, user_agent=UA, domain=domain, scheme="http",
                               min_delay_seconds=0.5, retry_backoff_seconds=0.5)
        geocoders = [OnlineGeocoder(config), OnlineGeocoder(config)]

        def work(g: OnlineGeocoder, tag: str) -> None:
            for n in range(3):
                g.lookup(AddressQuery(street=f"rue {tag}", number=n + 1, postcode="1000"))

        threads = [threading.Thread(target=work, args=(g, t))
                   for g, t in zip(geocoders, "ab", strict=True)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        starts = [r.at for r in state.requests]
    assert len(starts) == 6
    assert_rate_at_most(starts, 2.0)


def test_throttle_waits_the_remaining_interval_only() -> None:
    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    throttle = Throttle(clock=lambda: now[0], sleep=sleep)
    throttle.wait(1.0)
    now[0] += 0.25
    throttle.wait(1.0)
    now[0] += 3.0
    throttle.wait(1.0)
    assert slept == [0.75]


def test_consecutive_failures_stop_going_online_for_the_run(db: sqlite_utils.Database) -> None:
    add_listings(db, *[(f"Rue Numero {n}", "1", "1000") for n in range(5)])
    with serve_nominatim(fail=[500] * 10) as (domain, state):
        config = GeocodeConfig(online=True, user_agent=UA, domain=domain, scheme="http",
                               min_delay_seconds=0.05, retry_backoff_seconds=0.05,
                               max_retries=0, max_consecutive_errors=2)
        summary = geocode_pending(db, config=config)
        assert len(state.requests) == 2
    assert summary.online_errors == {"service_error": 2, "online_stopped": 3}
    # Stopped queries were never sent, so nothing about them is cached.
    assert db.conn.execute("SELECT count(*) FROM geocodes WHERE status = 'error'"
                           ).fetchone()[0] == 2
    assert summary.by_precision == {"postcode": 5}    # the gazetteer's answer stands


def test_a_refusal_stops_at_once(db: sqlite_utils.Database) -> None:
    add_listings(db, ("Rue A", "1", "1000"), ("Rue B", "1", "1000"))
    with serve_nominatim(fail=[403]) as (domain, state):
        config = GeocodeConfig(online=True, user_agent=UA, domain=domain, scheme="http",
                               min_delay_seconds=0.05, retry_backoff_seconds=0.05)
        summary = geocode_pending(db, config=config)
        assert len(state.requests) == 1
    assert summary.online_errors == {"refused": 1, "online_stopped": 1}


def test_timeouts_are_recorded_with_their_reason(db: sqlite_utils.Database) -> None:
    add_listings(db, ("Rue Lente", "1", "1180"))
    with serve_nominatim(delays=[1.0, 1.0]) as (domain, state):
        config = GeocodeConfig(online=True, user_agent=UA, domain=domain, scheme="http",
                               min_delay_seconds=0.05, retry_backoff_seconds=0.05,
                               timeout_seconds=0.2, max_retries=1)
        summary = geocode_pending(db, config=config)
        assert len(state.requests) == 2
    assert summary.failures == {"timeout": 1}
    assert entity(db, 0)["error"].startswith("timeout")


def test_the_request_cap_stops_a_run_and_the_next_run_resumes(
        db: sqlite_utils.Database) -> None:
    add_listings(db, *[(f"Rue Numero {n}", "1", "1000") for n in range(4)])
    with serve_nominatim() as (domain, state):
        config = GeocodeConfig(online=True, user_agent=UA, domain=domain, scheme="http",
                               min_delay_seconds=0.05, retry_backoff_seconds=0.05,
                               max_requests_per_run=3)
        first = geocode_pending(db, config=config)
        assert first.online_requests == 3 and first.online_errors == {"online_stopped": 1}
        second = geocode_pending(db, config=config)
        assert second.online_requests == 1 and len(state.requests) == 4
    assert second.by_precision == {"house_number": 4}


def test_what_the_gazetteer_placed_as_well_as_possible_is_never_sent(
        db: sqlite_utils.Database) -> None:
    # No number: the street is the best anyone can do, and the gazetteer has it. A
    # postcode alone: its centroid is all there is.
    add_listings(db, ("Wetstraat", "", "1000"), ("Rue de la Loi", "51", "1000"))
    upsert(db, "listings", [{"id": "s:pc", "source": "s", "source_id": "pc",
                             "address_raw": "1000 Bruxelles"}], key="id")
    with serve_nominatim() as (domain, state):
        config = GeocodeConfig(online=True, user_agent=UA, domain=domain, scheme="http",
                               min_delay_seconds=0.05, retry_backoff_seconds=0.05)
        summary = geocode_pending(db, config=config)
        assert state.requests == [] and summary.online_requests == 0
        assert geocode_pending(db, config=config).pending == 0
    assert summary.by_precision == {"street": 1, "house_number": 1, "postcode": 1}
