"""The demo world: deterministic, in the exact KBO format, truth consistent with the sites."""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections import Counter
from html import unescape
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from horeca.fixtures.generate_demo import (
    GAZETTEER_COLUMNS,
    KBO_HEADERS,
    TRUTH_COLUMNS,
    generate,
)
from horeca.fixtures.listings_gen import PLATFORMS
from horeca.fixtures.world import (
    DIFFICULTIES,
    PHONE_STYLES,
    e164,
    format_phone,
    mod97_number,
)
from horeca.region import resolve_region

DEMO = Path(__file__).resolve().parents[1] / "fixtures" / "demo"
SMALL = {"seed": 11, "units": 700, "horeca_units": 220}
DATE = re.compile(r"^\d{2}-\d{2}-\d{4}$")
ENTERPRISE = re.compile(r"^[01]\d{3}\.\d{3}\.\d{3}$")
ESTABLISHMENT = re.compile(r"^2\.\d{3}\.\d{3}\.\d{3}$")


def _checksums(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _mod97_ok(number: str) -> bool:
    digits = number.replace(".", "")
    return len(digits) == 10 and int(digits[8:]) == 97 - int(digits[:8]) % 97


def _read_kbo(folder: Path, name: str) -> list[list[str]]:
    with open(folder / f"{name}.csv", encoding="utf-8", newline="") as fh:
        return list(csv.reader(fh))


@pytest.fixture(scope="module")
def small_world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("world_a")
    world = generate(out, **SMALL)
    return out, world


# --------------------------------------------------------------------------- determinism


def test_same_seed_gives_the_same_bytes(small_world, tmp_path: Path) -> None:
    out_a, _ = small_world
    generate(tmp_path, **SMALL)
    assert _checksums(out_a) == _checksums(tmp_path)


def test_another_seed_gives_another_world(small_world, tmp_path: Path) -> None:
    out_a, _ = small_world
    generate(tmp_path, **{**SMALL, "seed": 12})
    assert (out_a / "truth.csv").read_bytes() != (tmp_path / "truth.csv").read_bytes()


def test_regenerating_leaves_other_files_alone(tmp_path: Path) -> None:
    (tmp_path / "sources.toml").write_text("# owned by the legal gate\n", encoding="utf-8")
    generate(tmp_path, seed=3, units=300, horeca_units=90)
    assert (tmp_path / "sources.toml").read_text(encoding="utf-8") == \
        "# owned by the legal gate\n"


def test_committed_demo_matches_a_fresh_generation(tmp_path: Path) -> None:
    generate(tmp_path)
    # other components keep their own files in fixtures/demo (sources.toml, reviewed terms)
    generated = ("kbo/", "sites/", "gazetteer.csv", "truth.csv")
    committed = {k: v for k, v in _checksums(DEMO).items() if k.startswith(generated)}
    assert committed == _checksums(tmp_path), \
        "fixtures/demo is stale: run python -m horeca.fixtures.generate_demo"


# --------------------------------------------------------------------------- KBO format


@pytest.mark.parametrize("folder", ["small", "demo"])
def test_kbo_files_have_exact_headers_and_every_value_quoted(folder, small_world) -> None:
    kbo = small_world[0] / "kbo" if folder == "small" else DEMO / "kbo"
    for name, header in KBO_HEADERS.items():
        lines = (kbo / f"{name}.csv").read_text(encoding="utf-8").splitlines()
        assert lines[0] == ",".join(f'"{h}"' for h in header)
        for line in lines[1:]:
            row = next(csv.reader([line]))
            assert len(row) == len(header), (name, line)
            assert line == ",".join(f'"{v}"' for v in row), (name, line)


def test_kbo_numbers_dates_codes_and_references_are_valid(small_world) -> None:
    kbo = small_world[0] / "kbo"
    enterprises = _read_kbo(kbo, "enterprise")[1:]
    ent_numbers = {r[0] for r in enterprises}
    assert len(ent_numbers) == len(enterprises)
    for number, status, situation, kind, form, form_cac, start in enterprises:
        assert ENTERPRISE.match(number) and _mod97_ok(number), number
        assert status == "AC" and situation == "000" and kind in ("1", "2")
        assert DATE.match(start)
        assert (form == "") == (kind == "1"), "natural persons have no legal form"
        assert form_cac in ("", "610", "706")
    establishments = _read_kbo(kbo, "establishment")[1:]
    est_numbers = {r[0] for r in establishments}
    for number, start, enterprise in establishments:
        assert ESTABLISHMENT.match(number) and _mod97_ok(number), number
        assert DATE.match(start)
        assert enterprise in ent_numbers
    branches = {r[0] for r in _read_kbo(kbo, "branch")[1:]}
    entities = ent_numbers | est_numbers | branches
    natural = {r[0] for r in enterprises if r[3] == "1"}
    addresses = _read_kbo(kbo, "address")[1:]
    for row in addresses:
        assert row[0] in entities and row[1] in ("REGO", "BAET", "ABBR")
        assert not (row[1] == "REGO" and row[0] in natural), "a natural person has no seat"
        assert row[12] == ""
    for row in _read_kbo(kbo, "denomination")[1:]:
        assert row[0] in entities and row[1] in "01234" and row[2] in ("001", "002", "003",
                                                                          "004")
    for row in _read_kbo(kbo, "contact")[1:]:
        assert row[0] in entities and row[2] in ("TEL", "EMAIL", "WEB", "FAX")
        assert row[1] == ("EST" if row[0] in est_numbers else "ENT")
    for row in _read_kbo(kbo, "activity")[1:]:
        assert row[0] in entities and row[1] in ("001", "003")
        assert row[2] in ("2003", "2008", "2025") and re.fullmatch(r"\d{5}", row[3])
        assert row[4] in ("MAIN", "SECO", "ANCI")
    meta = dict(_read_kbo(kbo, "meta")[1:])
    assert DATE.match(meta["SnapshotDate"]) and meta["ExtractType"] == "full"


def test_demo_register_has_the_kinds_of_entities_promised() -> None:
    kbo = DEMO / "kbo"
    enterprises = _read_kbo(kbo, "enterprise")[1:]
    establishments = _read_kbo(kbo, "establishment")[1:]
    assert 4800 <= len(establishments) <= 5200
    activity = _read_kbo(kbo, "activity")[1:]
    codes: dict[str, list[str]] = {}
    for row in activity:
        codes.setdefault(row[0], []).append(row[3])
    ent_of = {r[0]: r[2] for r in establishments}
    # a unit without activities of its own inherits its enterprise's
    horeca_units = [u for u, e in ent_of.items()
                    if any(c[:2] in ("55", "56") for c in codes.get(u) or codes.get(e, []))]
    assert 1450 <= len(horeca_units) <= 1550
    assert {r[2] for r in activity} == {"2003", "2008", "2025"}
    assert {r[4] for r in activity} >= {"MAIN", "SECO"}
    assert Counter(r[3] for r in enterprises)["1"] > 300        # natural persons
    assert {r[4] for r in enterprises} >= {"610", "015", "014", "017"}
    units_per_enterprise = Counter(ent_of.values())
    assert sum(1 for n in units_per_enterprise.values() if n >= 3) >= 10   # chains
    names = _read_kbo(kbo, "denomination")[1:]
    assert {r[2] for r in names} == {"001", "002", "003", "004"}
    assert {r[1] for r in names} >= {"0", "1", "2"}
    assert any(r[0] in ent_of and r[2] == "003" for r in names)  # unit-level trade names
    contacts = _read_kbo(kbo, "contact")[1:]
    assert {r[1] for r in contacts} == {"ENT", "EST"}
    assert {r[2] for r in contacts} == {"TEL", "WEB", "EMAIL"}
    values = [r[3] for r in contacts if r[2] == "TEL"]
    assert any("/" in v for v in values) and any(v.startswith("+32") for v in values)
    assert any(v.startswith("04") for v in values)
    addresses = _read_kbo(kbo, "address")[1:]
    assert all(r[5] and r[6] and r[7] and r[8] for r in addresses if not r[2])
    assert any(r[10] for r in addresses)                        # boxes apart
    assert any(r[7] != r[8] for r in addresses)                 # bilingual streets


# --------------------------------------------------------------------------- gazetteer


def _gazetteer(folder: Path) -> list[dict]:
    with open(folder / "gazetteer.csv", encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == GAZETTEER_COLUMNS
        return list(reader)


def test_every_belgian_register_address_lies_on_a_gazetteer_street(small_world) -> None:
    folder = small_world[0]
    segments: dict[tuple[str, str, str], list[tuple[int, int]]] = {}
    for row in _gazetteer(folder):
        key = (row["street_fr"], row["street_nl"], row["postcode"])
        segments.setdefault(key, []).append((int(row["house_from"]), int(row["house_to"])))
        for lat in (row["lat_start"], row["lat_end"]):
            assert 50.6 < float(lat) < 51.0
    for row in _read_kbo(folder / "kbo", "address")[1:]:
        if row[2]:
            continue   # a foreign company's seat abroad
        number = int(re.match(r"\d+", row[9]).group())
        ranges = segments[(row[8], row[7], row[4])]
        assert any(lo <= number <= hi for lo, hi in ranges), row


def test_gazetteer_streets_lie_in_brussels_unless_outside_the_region() -> None:
    brussels = resolve_region("brussels")
    rows = _gazetteer(DEMO)
    assert 150 <= len(rows) <= 260
    for row in rows:
        if 1000 <= int(row["postcode"]) <= 1299 and row["municipality_fr"] not in (
                "Hal", "Rhode-Saint-Genèse", "Waterloo"):
            for lat, lon in ((row["lat_start"], row["lon_start"]),
                             (row["lat_end"], row["lon_end"])):
                assert brussels.contains_point(float(lat), float(lon)), row


# --------------------------------------------------------------------------- truth vs sites


def _truth(folder: Path) -> list[dict]:
    with open(folder / "truth.csv", encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == TRUTH_COLUMNS
        return list(reader)


def _page_path(folder: Path, url: str) -> Path:
    host, _, path = url.split("://", 1)[1].partition("/")
    return folder / "sites" / host / path / "index.html"


def _decoded(page: Path) -> str:
    raw = page.read_bytes()
    charset = re.search(rb'<meta charset="([^"]+)"', raw).group(1).decode()
    return raw.decode(charset)


@pytest.mark.parametrize("which", ["small", "demo"])
def test_truth_rows_and_site_pages_correspond(which, small_world) -> None:
    folder = small_world[0] if which == "small" else DEMO
    truth = _truth(folder)
    keys = [(r["source"], r["source_id"]) for r in truth]
    assert len(keys) == len(set(keys))
    overpass = json.loads((folder / "sites/overpass.example/api/interpreter.json")
                          .read_text(encoding="utf-8"))
    elements = {f'{e["type"]}/{e["id"]}': e for e in overpass["elements"]}
    html_urls = set()
    for row in truth:
        assert row["source"] in PLATFORMS
        labels = row["difficulties"].split(";")
        assert labels and set(labels) <= set(DIFFICULTIES), labels
        assert ("clean" in labels) == (labels == ["clean"])
        assert row["unit_id"] == (row["establishment_number"] or row["enterprise_number"])
        assert ("absent" in labels) == (row["in_region"] == "1" and not row["unit_id"])
        if row["source"] == "overpass":
            element = elements[row["source_id"]]
            assert element["tags"]["name"] == row["name"]
            continue
        page = _page_path(folder, row["url"])
        assert page.is_file(), row["url"]
        assert row["url"].rstrip("/").endswith("-" + row["source_id"])
        assert row["name"] in unescape(_decoded(page)), row["url"]
        html_urls.add(page)
    assert set(elements) == {k for s, k in keys if s == "overpass"}
    detail_pages = {p for host in folder.joinpath("sites").iterdir()
                    for sub in ("place", "venue", "hotel")
                    for p in (host / sub).glob("*/index.html")}
    assert detail_pages == html_urls


def test_registered_truth_rows_point_at_register_units(small_world) -> None:
    folder = small_world[0]
    est = {r[0]: r[2] for r in _read_kbo(folder / "kbo", "establishment")[1:]}
    ents = {r[0] for r in _read_kbo(folder / "kbo", "enterprise")[1:]}
    for row in _truth(folder):
        if row["establishment_number"]:
            assert est[row["establishment_number"]] == row["enterprise_number"]
        elif row["enterprise_number"]:
            assert row["enterprise_number"] in ents


def test_demo_sizes_and_noise_are_near_the_targets() -> None:
    truth = _truth(DEMO)
    per_source = Counter(r["source"] for r in truth)
    for source, spec in PLATFORMS.items():
        assert abs(per_source[source] - spec["target"]) <= spec["target"] * 0.1, source
    approved = [r for r in truth if r["source"] in ("gustoreviews", "tablebook",
                                                     "staybrussels", "overpass")]
    assert 1450 <= len(approved) <= 1750
    businesses = {r["business_id"]: r for r in approved if r["in_region"] == "1"}
    absent = sum(1 for r in businesses.values() if not r["unit_id"])
    assert 0.12 <= absent / len(businesses) <= 0.18
    labels = Counter(lbl for r in truth for lbl in r["difficulties"].split(";"))
    for label in DIFFICULTIES:
        assert labels[label] > 0, f"no listing carries {label}"
    assert labels["multi_platform"] / len(truth) > 0.25
    assert labels["outside_region"] >= 10
    # noise stays realistic: most registered listings keep a usable phone or address
    registered = [r for r in approved if r["unit_id"]]
    hard = [r for r in registered
            if {"no_address", "moved"} & set(r["difficulties"].split(";"))
            and "phone_missing" in r["difficulties"]]
    assert len(hard) / len(registered) < 0.12


def test_generate_returns_published_records_matching_the_truth(small_world) -> None:
    _, world = small_world
    truth_keys = [(t["source"], t["source_id"]) for t in world.truth]
    record_keys = [(r["source"], r["source_id"]) for r in world.records()]
    assert sorted(truth_keys) == sorted(record_keys)
    for rec in world.records("tablebook", "gustoreviews"):
        assert rec["url"].startswith("http://") and rec["name"]
        if rec["phone_raw"]:
            assert rec["phone"].startswith("+32")
        if rec["vat"]:
            assert _mod97_ok(rec["vat"])


def test_sites_have_robots_terms_and_pagination() -> None:
    sites = DEMO / "sites"
    for spec in PLATFORMS.values():
        root = sites / spec["host"]
        robots = (root / "robots.txt").read_text(encoding="utf-8")
        assert "Disallow: /account/" in robots or "Disallow: /api/map" in robots
        assert (root / "terms" / "index.html").is_file()
    gusto = (sites / "gustoreviews.example/brussels/index.html").read_text(encoding="utf-8")
    assert 'rel="next" class="next" href="/brussels/page/2/"' in gusto
    assert (sites / "tablebook.example/brussels/restaurants/2/index.html").is_file()
    assert (sites / "staybrussels.example/brussels/hotels/2/index.html").is_file()
    tdm = json.loads((sites / "nomine.example/.well-known/tdmrep.json").read_text())
    assert tdm[0]["location"] == "/*" and tdm[0]["tdm-reservation"] == 1
    graph_pages = [p for p in (sites / "gustoreviews.example/place").glob("*/index.html")
                   if '"@graph"' in p.read_text(encoding="utf-8")]
    assert len(graph_pages) > 100


# --------------------------------------------------------------------------- national


def test_national_extract_streams_sorted_valid_rows_around_the_demo_register(
        tmp_path: Path) -> None:
    from horeca.fixtures.national import write_national_kbo

    counts = write_national_kbo(tmp_path, seed=5, units=300, horeca_units=90,
                                fraction=0.002)
    assert counts["enterprise"] == round(1_930_000 * 0.002)
    assert counts["establishment"] == round(1_660_000 * 0.002)
    assert 8 <= counts["activity"] / (counts["enterprise"] + counts["establishment"]) <= 12
    enterprises = [r[0] for r in _read_kbo(tmp_path, "enterprise")[1:]]
    units = _read_kbo(tmp_path, "establishment")[1:]
    assert enterprises == sorted(enterprises) and len(set(enterprises)) == len(enterprises)
    assert [u[0] for u in units] == sorted(u[0] for u in units)
    assert all(_mod97_ok(n) for n in enterprises + [u[0] for u in units])
    known = set(enterprises)
    assert all(u[2] in known for u in units)
    demo = generate(None, seed=5, units=300, horeca_units=90)
    assert {u.number for u in demo.register.units()} <= {u[0] for u in units}
    entity_order = [r[0] for r in _read_kbo(tmp_path, "activity")[1:]]
    assert entity_order == sorted(entity_order)
    for name, header in KBO_HEADERS.items():
        first = (tmp_path / f"{name}.csv").read_text(encoding="utf-8").splitlines()[0]
        assert first == ",".join(f'"{h}"' for h in header)


# --------------------------------------------------------------------------- building blocks


@given(st.integers(0, 99_999_999))
def test_mod97_numbers_are_always_valid(base: int) -> None:
    assert _mod97_ok(mod97_number(base))


@given(st.sampled_from(PHONE_STYLES), st.booleans(), st.integers(0, 9_999_999))
def test_every_phone_style_keeps_the_same_national_number(style, mobile, n) -> None:
    digits = f"047{n % 10}{n:06d}"[:10] if mobile else f"02{n:07d}"
    text = format_phone(digits, style)
    raw = re.sub(r"\D", "", text.replace("(0)", ""))
    national = "0" + raw[2:] if raw.startswith("32") else "0" + raw[4:] \
        if raw.startswith("0032") else raw
    assert national == digits and e164(digits) == "+32" + digits[1:]


@pytest.mark.parametrize(("host", "start", "next_link"), [
    ("gustoreviews.example", "/brussels/", r'rel="next" class="next" href="([^"]+)"'),
    ("tablebook.example", "/brussels/restaurants/", r'class="next-page" href="([^"]+)"'),
    ("staybrussels.example", "/brussels/hotels/", r'class="pager-next" href="([^"]+)"'),
    ("nomine.example", "/brussels/", r'rel="next" class="next" href="([^"]+)"'),
    ("eatlocal.example", "/restaurants/", r'rel="next" class="next" href="([^"]+)"'),
])
def test_following_pagination_reaches_every_detail_page(host, start, next_link) -> None:
    site = DEMO / "sites" / host
    seen: set[str] = set()
    path: str | None = start
    pages = 0
    while path:
        html = (site / path.strip("/") / "index.html").read_text(encoding="utf-8")
        seen |= set(re.findall(r'href="(/(?:place|venue|hotel)/[^"]+/)"', html))
        found = re.search(next_link, html)
        path = found.group(1) if found else None
        pages += 1
    details = {"/" + str(p.parent.relative_to(site)) + "/"
               for sub in ("place", "venue", "hotel") for p in (site / sub).glob("*/index.html")}
    assert pages > 1 and seen == details
