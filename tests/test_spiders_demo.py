"""End to end: crawl every demo source with real Scrapy over HTTP through the fixture
server, and check the result against fixtures/demo/truth.csv: every in-region listing of
the approved sites is collected, nothing outside the region is kept, the pending and the
TDM-reserving sources are refused, and no review text or reviewer name is stored."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from horeca.fixtures.server import serve_sites
from horeca.region import resolve_region
from horeca.spiders.runner import crawl_sources
from horeca.spiders.structured import jsonld_blocks, parse_html
from horeca.store import open_db

DEMO = Path(__file__).resolve().parents[1] / "fixtures" / "demo"
APPROVED = {"gustoreviews", "tablebook", "staybrussels", "overpass"}

pytestmark = pytest.mark.skipif(not (DEMO / "sources.toml").exists(),
                                reason="the demo world is not generated")


def fast_sources(tmp_path: Path) -> Path:
    """The demo's sources config with a high request rate, so the test runs in seconds:
    same sites, same reviews (terms hashes), same spider options."""
    text = (DEMO / "sources.toml").read_text(encoding="utf-8")
    text = re.sub(r"(?m)^max_requests_per_second = .*$", "max_requests_per_second = 1000.0",
                  text)
    path = tmp_path / "sources.toml"
    path.write_text(text, encoding="utf-8")
    return path


def reviewer_names(site: Path, limit: int = 40) -> set[str]:
    names: set[str] = set()
    for page in sorted(site.glob("place/*/index.html"))[:limit]:
        blocks, _ = jsonld_blocks(parse_html(page.read_text(encoding="utf-8")))
        text = json.dumps(blocks, ensure_ascii=False)
        names.update(re.findall(r'"author": \{"@type": "Person", "name": "([^"]+)"', text))
    return names


def test_demo_crawl_collects_every_in_region_listing_of_approved_sites(tmp_path: Path) -> None:
    truth = list(csv.DictReader((DEMO / "truth.csv").open(encoding="utf-8")))
    with serve_sites(DEMO / "sites") as proxy:
        reports = crawl_sources(tmp_path / "h.db", fast_sources(tmp_path), None,
                                resolve_region("brussels"), proxy, throttle=False, parallel=2)
    by_source = {r.source: r for r in reports}
    assert {s for s, r in by_source.items() if r.status == "ok"} == APPROVED
    assert by_source["eatlocal"].status == "refused"
    assert by_source["nomine"].status == "refused"
    assert "pending" in by_source["eatlocal"].reason
    assert "TDM" in by_source["nomine"].reason or "tdm" in by_source["nomine"].reason.lower()
    assert not any(r.flags for r in reports)

    db = open_db(tmp_path / "h.db")
    stored = {(r["source"], r["source_id"]) for r in db.query("SELECT source, source_id "
                                                               "FROM listings")}
    wanted = {(t["source"], t["source_id"]) for t in truth
              if t["source"] in APPROVED and t["in_region"] == "1"}
    outside = {(t["source"], t["source_id"]) for t in truth if t["in_region"] == "0"}
    assert wanted - stored == set()
    assert stored & outside == set()
    assert stored - wanted == set()
    for source in APPROVED:
        assert by_source[source].kept == sum(1 for s, _ in wanted if s == source)

    dump = json.dumps([dict(r) for r in db.query("SELECT * FROM listings")], ensure_ascii=False)
    names = reviewer_names(DEMO / "sites" / "gustoreviews.example")
    assert names and not [n for n in names if n in dump]
    assert "@" not in dump  # no e-mail address reached the store
