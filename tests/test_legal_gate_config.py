"""sources.toml is validated on load, errors name file, line and key; edits keep comments."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from horeca.errors import UserError
from horeca.legal_gate.config import (
    DEFAULT_USER_AGENT,
    SourceConfig,
    load_sources,
    parse_sources,
    resolve_sources_path,
)
from horeca.legal_gate.review import approve_source, suspend_source

SHA = "a" * 64
GOOD = f"""\
# Sources reviewed by the data-protection office.
[defaults]
user_agent = "horeca/0.1 (+mailto:dpo@inspection.example)"
max_requests_per_second = 1.0
retention_days = 365
allowed_fields = ["name", "address", "phone"]

# A review platform; terms re-read every quarter.
[sources.gusto]
spider = "structured"            # structured | selector | overpass
status = "approved"
allowed_domains = ["gustoreviews.example"]
start_urls = ["http://gustoreviews.example/brussels/"]
reviewer = "A. Jansen"
reviewed_on = 2026-01-15
legal_basis = "GDPR Art. 6(1)(e)"
purpose = "inspection targeting"
terms_url = "http://gustoreviews.example/terms/"
terms_sha256 = "{SHA}"
retention_days = 180
max_requests_per_second = 2.0

[sources.gusto.spider_options]
listing_pages = "a.next"   # the spiders engineer's key

[sources.eatlocal]
spider = "selector"
status = "pending"                # waiting for legal
allowed_domains = ["eatlocal.example"]
start_urls = ["http://www.eatlocal.example/"]
terms_url = "http://www.eatlocal.example/terms/"
"""


def _error(text: str) -> UserError:
    with pytest.raises(UserError) as err:
        parse_sources(text, "sources.toml")
    return err.value


def _line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


def test_good_config_loads_with_defaults_merged(tmp_path: Path) -> None:
    path = tmp_path / "sources.toml"
    path.write_text(GOOD)
    config = load_sources(path)
    gusto = config.get("gusto")
    assert gusto.approved and gusto.reviewed_on == date(2026, 1, 15)
    assert gusto.retention_days == 180 and gusto.max_requests_per_second == 2.0
    assert gusto.min_delay_s == 0.5
    assert gusto.allowed_fields == ("name", "address", "phone")
    assert gusto.spider_options == {"listing_pages": "a.next"}
    assert gusto.line == _line_of(GOOD, "[sources.gusto]")
    eat = config.get("eatlocal")
    assert eat.status == "pending" and eat.retention_days == 365
    assert eat.effective_user_agent.startswith("horeca/0.1")
    assert [s.name for s in config.approved()] == ["gusto"]


def test_source_survives_a_round_trip_through_settings() -> None:
    gusto = parse_sources(GOOD).get("gusto")
    assert SourceConfig.from_dict(gusto.to_dict()) == gusto


def test_unknown_source_name_lists_the_known_ones() -> None:
    with pytest.raises(UserError, match="known sources: gusto, eatlocal"):
        parse_sources(GOOD).get("gustoo")


def test_malformed_toml_names_the_line() -> None:
    text = GOOD.replace('status = "pending"', 'status = "pending')
    err = _error(text)
    assert err.line == _line_of(text, 'status = "pending') and "malformed TOML" in str(err)


def test_unknown_key_is_named_with_its_line_and_a_suggestion() -> None:
    text = GOOD.replace("retention_days = 180", "retension_days = 180")
    err = _error(text)
    assert err.line == _line_of(text, "retension_days")
    assert "retension_days" in str(err) and "retention_days" in str(err)


def test_unknown_spider_is_refused() -> None:
    text = GOOD.replace('spider = "selector"', 'spider = "magic"')
    err = _error(text)
    assert err.line == _line_of(text, 'spider = "magic"') and "unknown spider" in str(err)


def test_extra_spider_kinds_can_be_allowed() -> None:
    text = GOOD.replace('spider = "selector"', 'spider = "magic"')
    config = parse_sources(text, known_spiders={"structured", "magic"})
    assert config.get("eatlocal").spider == "magic"


def test_bad_status_is_refused() -> None:
    text = GOOD.replace('status = "pending"', 'status = "maybe"')
    assert _error(text).line == _line_of(text, '"maybe"')


@pytest.mark.parametrize("key", ["reviewer", "reviewed_on", "legal_basis", "terms_sha256"])
def test_approved_source_without_review_record_is_refused(key: str) -> None:
    text = "\n".join(line for line in GOOD.splitlines() if not line.startswith(f"{key} ="))
    err = _error(text)
    assert f"approved but has no {key}" in str(err)
    assert err.line == _line_of(text, 'status = "approved"')


def test_wrong_type_is_named() -> None:
    text = GOOD.replace("retention_days = 180", 'retention_days = "180"')
    err = _error(text)
    assert "retention_days must be an integer" in str(err)
    assert err.line == _line_of(text, 'retention_days = "180"')


def test_start_url_outside_allowed_domains_is_refused() -> None:
    text = GOOD.replace('start_urls = ["http://www.eatlocal.example/"]',
                        'start_urls = ["http://evil.example/"]')
    err = _error(text)
    assert "outside allowed_domains" in str(err)
    assert err.line == _line_of(text, "evil.example")


def test_subdomain_of_an_allowed_domain_is_accepted() -> None:
    assert parse_sources(GOOD).get("eatlocal").start_urls == ("http://www.eatlocal.example/",)


def test_forbidden_field_cannot_be_allowed() -> None:
    text = GOOD.replace('allowed_fields = ["name", "address", "phone"]',
                        'allowed_fields = ["name", "reviews"]')
    assert "never kept" in str(_error(text))


def test_user_agent_needs_a_contact() -> None:
    text = GOOD.replace('"horeca/0.1 (+mailto:dpo@inspection.example)"', '"horeca/0.1"')
    assert "no contact" in str(_error(text))


def test_rate_must_be_positive() -> None:
    text = GOOD.replace("max_requests_per_second = 2.0", "max_requests_per_second = 0")
    assert "above 0" in str(_error(text))


def test_missing_file_says_how_to_point_at_one(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="--sources"):
        load_sources(tmp_path / "nope.toml")


def test_sources_path_comes_from_option_then_env(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HORECA_SOURCES", str(tmp_path / "env.toml"))
    assert resolve_sources_path(None) == tmp_path / "env.toml"
    assert resolve_sources_path(tmp_path / "opt.toml") == tmp_path / "opt.toml"


def test_default_user_agent_names_a_contact() -> None:
    assert "mailto:" in DEFAULT_USER_AGENT


# --------------------------------------------------------------------------- edits


def test_approve_writes_the_review_and_keeps_comments_and_layout(tmp_path: Path) -> None:
    path = tmp_path / "sources.toml"
    path.write_text(GOOD)
    approved = approve_source(path, "eatlocal", reviewer="B. Peeters",
                              legal_basis="GDPR Art. 6(1)(e)", terms_sha256="b" * 64,
                              purpose="inspection targeting", today=date(2026, 3, 1))
    text = path.read_text()
    assert approved.status == "approved" and approved.reviewed_on == date(2026, 3, 1)
    for kept in ("# Sources reviewed by the data-protection office.",
                 "# A review platform; terms re-read every quarter.",
                 "# structured | selector | overpass", "# the spiders engineer's key",
                 "[sources.gusto.spider_options]"):
        assert kept in text
    assert "reviewed_on = 2026-03-01" in text and f'terms_sha256 = "{"b" * 64}"' in text
    # Everything outside the edited table is byte for byte the same.
    head = GOOD.split("[sources.eatlocal]")[0]
    assert text.startswith(head)
    assert load_sources(path).get("eatlocal").reviewer == "B. Peeters"


def test_suspend_then_approve_clears_the_suspension(tmp_path: Path) -> None:
    path = tmp_path / "sources.toml"
    path.write_text(GOOD)
    suspended = suspend_source(path, "gusto", reason="platform objected",
                               today=date(2026, 4, 1))
    assert suspended.status == "suspended"
    assert suspended.suspended_reason == "platform objected"
    assert 'listing_pages = "a.next"' in path.read_text()
    again = approve_source(path, "gusto", reviewer="A. Jansen", legal_basis="x",
                           terms_sha256=SHA)
    assert again.status == "approved" and again.suspended_reason is None
    assert "suspended_reason" not in path.read_text()


def test_approve_refuses_an_unknown_source_and_leaves_the_file(tmp_path: Path) -> None:
    path = tmp_path / "sources.toml"
    path.write_text(GOOD)
    with pytest.raises(UserError, match="no source named 'nope'"):
        approve_source(path, "nope", reviewer="x", legal_basis="y", terms_sha256=SHA)
    assert path.read_text() == GOOD


def test_approve_that_would_leave_an_invalid_entry_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "sources.toml"
    path.write_text(GOOD)
    with pytest.raises(UserError, match="approved but has no purpose"):
        approve_source(path, "eatlocal", reviewer="x", legal_basis="y", terms_sha256=SHA)
    assert path.read_text() == GOOD


# --------------------------------------------------------------------------- the demo

DEMO = Path(__file__).resolve().parents[1] / "fixtures" / "demo"


@pytest.mark.skipif(not (DEMO / "sites").is_dir(), reason="demo sites not generated")
def test_demo_sources_pass_or_are_refused_as_the_demo_intends() -> None:
    from horeca.fixtures.server import serve_sites
    from horeca.legal_gate.checks import CrawlRefused, preflight

    config = load_sources(DEMO / "sources.toml")
    outcome: dict[str, str] = {}
    with serve_sites(DEMO / "sites") as proxy:
        for source in config:
            try:
                preflight(source, proxy, timeout=10)
                outcome[source.name] = "ok"
            except CrawlRefused as refused:
                outcome[source.name] = refused.reason
    assert outcome == {"gustoreviews": "ok", "tablebook": "ok", "staybrussels": "ok",
                       "overpass": "ok", "eatlocal": "not_approved", "nomine": "tdm_reserved"}
