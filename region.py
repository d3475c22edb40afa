"""Named regions (postcodes and a bounding box), used by crawl, register import, geocode, run.

The bundled `regions.toml` defines `brussels`; a user file passed with `--regions` adds to
or overrides it. A region can also be given ad hoc with `--postcodes 1000,1040-1050` or a
bounding box `--bbox south,west,north,east`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from horeca.errors import UserError
from horeca.tomlfile import parse_toml, read_toml_text


@dataclass(frozen=True)
class Region:
    name: str
    label: str = ""
    country: str = "BE"
    postcode_ranges: tuple[tuple[int, int], ...] = ()
    bbox: tuple[float, float, float, float] | None = None  # south, west, north, east
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    def contains_postcode(self, postcode: str | None) -> bool:
        if not self.postcode_ranges:
            return True
        if not postcode:
            return False
        digits = "".join(ch for ch in str(postcode) if ch.isdigit())
        if not digits:
            return False
        value = int(digits)
        return any(lo <= value <= hi for lo, hi in self.postcode_ranges)

    def contains_point(self, lat: float | None, lon: float | None) -> bool:
        if self.bbox is None or lat is None or lon is None:
            return True
        south, west, north, east = self.bbox
        return south <= lat <= north and west <= lon <= east


def parse_postcodes(spec: str, *, where: str = "--postcodes") -> tuple[tuple[int, int], ...]:
    """'1000,1040-1050' -> ((1000, 1000), (1040, 1050))."""
    ranges: list[tuple[int, int]] = []
    for part in str(spec).split(","):
        part = part.strip()
        if not part:
            continue
        lo, _, hi = part.partition("-")
        try:
            a, b = int(lo), int(hi or lo)
        except ValueError:
            raise UserError(f"{part!r} is not a postcode or a range like 1040-1050",
                            path=where, fix="write postcodes as 1000,1040-1050") from None
        if a > b:
            raise UserError(f"range {part!r} runs backwards", path=where,
                            fix=f"write it as {b}-{a}")
        ranges.append((a, b))
    return tuple(ranges)


def parse_bbox(spec: str, *, where: str = "--bbox") -> tuple[float, float, float, float]:
    try:
        south, west, north, east = (float(x) for x in str(spec).split(","))
    except ValueError:
        raise UserError(f"{spec!r} is not a bounding box", path=where,
                        fix="give south,west,north,east in degrees, e.g. 50.76,4.24,50.91,4.48"
                        ) from None
    if not (south < north and west < east):
        raise UserError(f"{spec!r}: south must be below north and west left of east",
                        path=where, fix="give south,west,north,east")
    return (south, west, north, east)


def _load_file(text: str, path: str) -> dict[str, Region]:
    data = parse_toml(text, path)
    regions: dict[str, Region] = {}
    for name, spec in data.items():
        if not isinstance(spec, dict):
            raise UserError(f"[{name}] must be a table", path=path,
                            fix="define regions as [name] tables")
        postcodes = spec.get("postcodes", [])
        ranges: tuple[tuple[int, int], ...] = ()
        for item in postcodes:
            ranges += parse_postcodes(str(item), where=f"{path} [{name}].postcodes")
        bbox = spec.get("bbox")
        regions[name] = Region(
            name=name, label=spec.get("label", name), country=spec.get("country", "BE"),
            postcode_ranges=ranges,
            bbox=parse_bbox(",".join(map(str, bbox)), where=f"{path} [{name}].bbox")
            if bbox else None,
            extra={k: v for k, v in spec.items()
                   if k not in {"label", "country", "postcodes", "bbox"}},
        )
    return regions


def load_regions(user_file: str | Path | None = None) -> dict[str, Region]:
    bundled = resources.files("horeca").joinpath("regions.toml").read_text(encoding="utf-8")
    regions = _load_file(bundled, "regions.toml")
    if user_file:
        text = read_toml_text(user_file, what="regions file", option="--regions")
        regions.update(_load_file(text, str(user_file)))
    return regions


def resolve_region(name: str | None = None, *, postcodes: str | None = None,
                   bbox: str | None = None, regions_file: str | Path | None = None) -> Region:
    """A named region, optionally narrowed/overridden by ad hoc postcodes or bbox."""
    if name:
        regions = load_regions(regions_file)
        if name not in regions:
            known = ", ".join(sorted(regions))
            raise UserError(f"unknown region {name!r}", path="--region",
                            fix=f"use one of: {known}, or add it to a --regions file")
        region = regions[name]
    else:
        region = Region(name="custom", label="custom region")
    if postcodes:
        region = Region(region.name if name else "custom", region.label, region.country,
                        parse_postcodes(postcodes), region.bbox)
    if bbox:
        region = Region(region.name if name else "custom", region.label, region.country,
                        region.postcode_ranges, parse_bbox(bbox))
    if not name and not postcodes and not bbox:
        raise UserError("no region given", path="--region",
                        fix="pass --region brussels, or --postcodes / --bbox")
    return region
