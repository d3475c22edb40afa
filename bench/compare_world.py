"""The inputs of the side-by-side benchmark: the demo region, or a scaled-up world.

A `WorldFiles` names everything both sides start from: a KBO extract, the street
gazetteer, the truth file (evaluation only), and the listings, either as the fixture
sites to crawl (demo) or as JSON-lines files to load with `listings import` (large).

The large world is the demo generator at ten times the demo's register and businesses
(50,000 establishment units, 15,000 of them HoReCa, about 12,400 businesses). The demo's
street list (about 28,700 house numbers) cannot hold 50,000 addresses, so the large world
uses every generic street name in every postcode (`GENERIC_PER_POSTCODE`, 2 in the demo)
— a denser city of the same 22 postcodes with about 91,500 house numbers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / "data"
DEMO = ROOT / "fixtures" / "demo"
DEMO_SOURCES = DEMO / "sources.toml"
# The sources the demo's legal gate lets through (eatlocal is pending review, nomine
# reserves text-and-data-mining rights): the large world loads the same four.
APPROVED = ("gustoreviews", "tablebook", "staybrussels", "overpass")
# What a crawl reads off a page: the raw fields, before the spiders' parsing steps.
RAW_FIELDS = ("source_id", "url", "name", "alt_names", "address_raw", "phone_raw", "website",
              "lat", "lon", "category", "review_count", "rating", "price_range", "rooms",
              "opening_hours", "legal_name", "vat")
SCALES: dict[str, dict[str, int]] = {
    "large": {"units": 50_000, "horeca_units": 15_000, "generic_streets_per_postcode": 28},
}
REGION = "brussels"


@dataclass
class WorldFiles:
    scale: str
    kbo: Path
    gazetteer: Path
    truth: Path
    sources: Path
    sites: Path | None = None                       # crawl these (demo)
    listings: dict[str, Path] = field(default_factory=dict)  # or import these (large)
    mapping: Path | None = None
    sizes: dict[str, int] = field(default_factory=dict)
    generate_s: float | None = None

    @property
    def loading(self) -> str:
        return "crawl" if self.sites else "listings import"


def demo_world() -> WorldFiles:
    return WorldFiles("demo", DEMO / "kbo", DEMO / "gazetteer.csv", DEMO / "truth.csv",
                      DEMO_SOURCES, sites=DEMO / "sites")


def raw_record(record: dict) -> dict:
    """A generator record reduced to what a spider reads off the page."""
    return {k: record.get(k) for k in RAW_FIELDS if record.get(k) not in (None, "", [])}


def write_mapping(path: Path) -> None:
    lines = ["# The large benchmark world's JSON-lines listings: field = same-named key",
             "[columns]", *(f'{f} = "{f}"' for f in RAW_FIELDS), "", "[options]",
             'format = "jsonl"', ""]
    path.write_text("\n".join(lines), encoding="utf-8")


def large_world(scale: str = "large", *, regenerate: bool = False) -> WorldFiles:
    """The scaled-up world in bench/data/compare-<scale>/ (generated once, then reused)."""
    return generated_world(DATA / f"compare-{scale}", scale, SCALES[scale],
                           regenerate=regenerate)


def generated_world(out: Path, scale: str, params: dict[str, int], *,
                    regenerate: bool = False) -> WorldFiles:
    """Generate a world of `params` (units, horeca_units, generic_streets_per_postcode,
    optionally businesses) into `out`, unless the same one is already there."""
    import time

    files = WorldFiles(scale, out / "kbo", out / "gazetteer.csv", out / "truth.csv",
                       DEMO_SOURCES, listings={s: out / "listings" / f"{s}.jsonl"
                                               for s in APPROVED},
                       mapping=out / "listings" / "mapping.toml")
    stamp = out / "world.json"
    if stamp.exists() and not regenerate:
        saved = json.loads(stamp.read_text())
        if saved.get("params") == params:
            files.sizes, files.generate_s = saved["sizes"], saved.get("generate_s")
            return files
    started = time.monotonic()
    world = _generate(params)
    _write(out, world)
    files.sizes = dict(world.sizes)
    files.generate_s = round(time.monotonic() - started, 1)
    stamp.write_text(json.dumps({"params": params, "sizes": files.sizes,
                                 "generate_s": files.generate_s}, indent=2) + "\n")
    return files


def _generate(params: dict[str, int]):
    import horeca.fixtures.world_data as world_data
    from horeca.fixtures.generate_demo import generate

    saved = world_data.GENERIC_PER_POSTCODE
    world_data.GENERIC_PER_POSTCODE = params["generic_streets_per_postcode"]
    try:
        return generate(None, units=params["units"], horeca_units=params["horeca_units"],
                        businesses=params.get("businesses"))
    finally:
        world_data.GENERIC_PER_POSTCODE = saved


def _write(out: Path, world) -> None:
    import shutil

    from horeca.fixtures.generate_demo import (
        GAZETTEER_COLUMNS,
        TRUTH_COLUMNS,
        gazetteer_rows,
        write_csv,
        write_kbo,
    )

    out.mkdir(parents=True, exist_ok=True)
    if (out / "kbo").exists():
        shutil.rmtree(out / "kbo")
    counts = write_kbo(out / "kbo", world.register)
    world.sizes.update({f"kbo_{k}": v for k, v in counts.items()})
    write_csv(out / "gazetteer.csv", GAZETTEER_COLUMNS, gazetteer_rows(world.streets))
    write_csv(out / "truth.csv", TRUTH_COLUMNS, world.truth)
    folder = out / "listings"
    folder.mkdir(parents=True, exist_ok=True)
    for source in APPROVED:
        with open(folder / f"{source}.jsonl", "w", encoding="utf-8") as fh:
            for record in world.listings[source]:
                fh.write(json.dumps(raw_record(record), ensure_ascii=False) + "\n")
    write_mapping(folder / "mapping.toml")


def world_for(scale: str, *, regenerate: bool = False) -> WorldFiles:
    return demo_world() if scale == "demo" else large_world(scale, regenerate=regenerate)
