"""A self-contained HTML page: summary, an offline map, a sortable and filterable table.

One file, no external request of any kind (a Content-Security-Policy in the page forbids
them): map tiles would need the internet, so the map is an inline SVG of the points over
the region's bounding box, with a graticule, a 1 km scale bar and a tooltip per point.
Every value goes through `html.escape`; the page has no JSON and builds no HTML from data
in JavaScript, so a business called `<script>` is shown as text.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

from horeca.exports.safety import esc

OUTCOME_COLOURS = {"no-match": "#c0392b", "doubt": "#e67e22", "match": "#2e86c1"}
MAP_WIDTH = 900.0
# Nothing may be fetched: no tiles, fonts, scripts or images from anywhere.
_CSP = ("default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
        "img-src data:")

# (header, how to build the cell text from a row, sort as number?)
_TABLE: tuple[tuple[str, str, bool], ...] = (
    ("#", "rank", True), ("priority", "priority", True), ("outcome", "outcome", False),
    ("name", "name", False), ("reason", "reason", False),
    ("why this priority", "priority_reason", False), ("grades", "grades", False),
    ("score", "score", True), ("activity", "activity_score", True),
    ("gap", "activity_gap", True), ("address", "_address", False),
    ("phone", "phones", False), ("website", "websites", False),
    ("reviews", "reviews_by_source", False), ("rating", "rating", True),
    ("price", "price_range", False), ("rooms", "rooms", True),
    ("register candidates", "_candidates", False), ("declared", "_declared", False),
    ("previous verdict", "previous_verdict", False), ("place id", "place_id", False),
)

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1em 2em;color:#222}
h1{font-size:1.4em;margin:.2em 0}.meta{color:#555}
svg{border:1px solid #ccc;background:#fbfbf8;max-width:100%;height:auto}
.grid{stroke:#ddd;stroke-width:.6}.gridlabel{font-size:10px;fill:#888}
.pc{font-size:13px;fill:#b5b5b5;font-weight:600}
.pt{stroke:#fff;stroke-width:.8;opacity:.85}.pt:hover{stroke:#000;stroke-width:2}
table{border-collapse:collapse;margin-top:1em;font-size:12.5px}
th,td{border:1px solid #ddd;padding:3px 5px;vertical-align:top;text-align:left}
th{background:#f3f3f3;position:sticky;top:0;cursor:pointer;white-space:nowrap}
th.asc::after{content:" \\25B2"}th.desc::after{content:" \\25BC"}
td.num{text-align:right;white-space:nowrap}tr:target{background:#fff3c4}
.o-no-match{color:#c0392b;font-weight:600}.o-doubt{color:#e67e22;font-weight:600}
.o-match{color:#2e86c1}.legend span{margin-right:1.2em}
.dot{display:inline-block;width:.8em;height:.8em;border-radius:50%;margin-right:.3em}
#filter{padding:4px;width:24em;margin-top:1em}.small{font-size:12px;color:#666}
"""

_JS = """
(function(){
  var table=document.getElementById('places'), body=table.tBodies[0];
  var heads=table.tHead.rows[0].cells;
  Array.prototype.forEach.call(heads,function(th,i){
    th.addEventListener('click',function(){
      var num=th.getAttribute('data-num')==='1', asc=!th.classList.contains('asc');
      Array.prototype.forEach.call(heads,function(h){h.classList.remove('asc','desc');});
      th.classList.add(asc?'asc':'desc');
      var rows=Array.prototype.slice.call(body.rows);
      rows.sort(function(a,b){
        var x=a.cells[i].getAttribute('data-v'), y=b.cells[i].getAttribute('data-v');
        var r;
        if(num){x=x===''?-Infinity:parseFloat(x);y=y===''?-Infinity:parseFloat(y);r=x-y;}
        else{r=x.localeCompare(y);}
        return asc?r:-r;
      });
      rows.forEach(function(r){body.appendChild(r);});
    });
  });
  document.getElementById('filter').addEventListener('input',function(e){
    var q=e.target.value.toLowerCase();
    Array.prototype.forEach.call(body.rows,function(r){
      r.style.display=r.textContent.toLowerCase().indexOf(q)===-1?'none':'';
    });
  });
})();
"""


def _cell_text(row: dict[str, Any], key: str) -> str:
    if key == "_address":
        street = " ".join(str(row[k]) for k in ("street", "house_number") if row.get(k))
        if row.get("box"):
            street += f" bus {row['box']}"
        town = " ".join(str(row[k]) for k in ("postcode", "locality") if row.get(k))
        return ", ".join(p for p in (street, town) if p)
    if key == "_candidates":
        lines = []
        for i in range(1, 4):
            if row.get(f"candidate_{i}"):
                parts = [row.get(f"candidate_{i}"), row.get(f"candidate_{i}_name"),
                         row.get(f"candidate_{i}_grades"), row.get(f"candidate_{i}_score")]
                lines.append(" | ".join(str(p) for p in parts if p not in (None, "")))
        return "\n".join(lines)
    if key == "_declared":
        parts = []
        if row.get("declared_workers") is not None:
            parts.append(f"{row['declared_workers']:g} workers")
        if row.get("declared_turnover") is not None:
            parts.append(f"turnover {row['declared_turnover']:,.0f}")
        if parts and row.get("declared_by"):
            parts.append(f"({row['declared_by']})")
        return " ".join(parts)
    value = row.get(key)
    return "" if value is None else str(value)


def _table(rows: Sequence[dict[str, Any]]) -> str:
    head = "".join(f'<th data-num="{1 if num else 0}">{esc(h)}</th>' for h, _, num in _TABLE)
    body = []
    for row in rows:
        cells = []
        for _, key, num in _TABLE:
            text = _cell_text(row, key)
            shown = esc(text).replace("\n", "<br>")
            if key == "outcome":
                shown = f'<span class="o-{esc(text)}">{shown}</span>'
            cls = ' class="num"' if num else ""
            cells.append(f'<td{cls} data-v="{esc(text)}">{shown}</td>')
        body.append(f'<tr id="p-{esc(row.get("rank"))}">{"".join(cells)}</tr>')
    return (f'<table id="places"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table>')


def _points(rows: Sequence[dict[str, Any]]) -> list[tuple[float, float, dict[str, Any]]]:
    return [(float(r["lat"]), float(r["lon"]), r) for r in rows
            if isinstance(r.get("lat"), int | float) and isinstance(r.get("lon"), int | float)]


def map_bounds(points: Sequence[tuple[float, float, Any]],
               bbox: tuple[float, float, float, float] | None) -> tuple[float, float, float, float]:
    """south, west, north, east: the region's box, grown to hold every point."""
    lats = [p[0] for p in points]
    lons = [p[1] for p in points]
    if bbox:
        south, west, north, east = bbox
        lats += [south, north]
        lons += [west, east]
    if not lats:
        return (50.76, 4.24, 50.91, 4.48)
    south, north, west, east = min(lats), max(lats), min(lons), max(lons)
    pad_lat = max((north - south) * 0.03, 0.002)
    pad_lon = max((east - west) * 0.03, 0.002)
    return (south - pad_lat, west - pad_lon, north + pad_lat, east + pad_lon)


def _svg_map(rows: Sequence[dict[str, Any]], bbox: tuple[float, float, float, float] | None
             ) -> str:
    points = _points(rows)
    south, west, north, east = map_bounds(points, bbox)
    kx = math.cos(math.radians((south + north) / 2))  # equirectangular, true at mid-latitude
    scale = MAP_WIDTH / ((east - west) * kx)
    height = (north - south) * scale

    def xy(lat: float, lon: float) -> tuple[float, float]:
        return (lon - west) * kx * scale, (north - lat) * scale

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {MAP_WIDTH:.0f} '
             f'{height:.0f}" width="{MAP_WIDTH:.0f}" height="{height:.0f}" role="img" '
             f'aria-label="map of the places">']
    step = 0.05 if max(north - south, east - west) < 1 else 0.5
    lat = math.ceil(south / step) * step
    while lat < north:
        _, y = xy(lat, west)
        parts.append(f'<line class="grid" x1="0" y1="{y:.1f}" x2="{MAP_WIDTH:.0f}" '
                     f'y2="{y:.1f}"/><text class="gridlabel" x="3" y="{y - 2:.1f}">'
                     f'{lat:.2f}°N</text>')
        lat += step
    lon = math.ceil(west / step) * step
    while lon < east:
        x, _ = xy(south, lon)
        parts.append(f'<line class="grid" x1="{x:.1f}" y1="0" x2="{x:.1f}" y2="{height:.0f}"/>'
                     f'<text class="gridlabel" x="{x + 2:.1f}" y="{height - 3:.0f}">'
                     f'{lon:.2f}°E</text>')
        lon += step
    km = scale / 111.32  # pixels per km: 1° of latitude is about 111.32 km
    parts.append(f'<line x1="10" y1="20" x2="{10 + km:.1f}" y2="20" stroke="#333" '
                 f'stroke-width="3"/><text x="{14 + km:.1f}" y="24" font-size="11">1 km</text>')
    # Postcode labels at the centre of their places: orientation without map tiles.
    by_postcode: dict[str, list[tuple[float, float]]] = {}
    for lat_, lon_, row in points:
        if row.get("postcode"):
            by_postcode.setdefault(str(row["postcode"]), []).append(xy(lat_, lon_))
    for postcode, xys in sorted(by_postcode.items()):
        cx = sum(x for x, _ in xys) / len(xys)
        cy = sum(y for _, y in xys) / len(xys)
        parts.append(f'<text class="pc" x="{cx:.1f}" y="{cy:.1f}" text-anchor="middle">'
                     f'{esc(postcode)}</text>')
    # Lowest priority first, so the most urgent points are drawn on top.
    for lat_, lon_, row in sorted(points, key=lambda p: p[2].get("priority") or 0):
        x, y = xy(lat_, lon_)
        colour = OUTCOME_COLOURS.get(str(row.get("outcome")), "#777")
        radius = 3 + 4 * min(1.0, float(row.get("priority") or 0) / 100)
        tip = (f"#{row.get('rank')} {row.get('name') or ''} — {row.get('outcome')}, "
               f"priority {row.get('priority')}")
        parts.append(f'<a href="#p-{esc(row.get("rank"))}"><circle class="pt" cx="{x:.1f}" '
                     f'cy="{y:.1f}" r="{radius:.1f}" fill="{colour}"><title>{esc(tip)}'
                     f'</title></circle></a>')
    parts.append("</svg>")
    return "".join(parts)


def render_page(rows: Sequence[dict[str, Any]], *, title: str, generated: str,
                bbox: tuple[float, float, float, float] | None = None,
                attribution: str | None = None, notes: Sequence[str] = ()) -> str:
    counts = Counter(str(r.get("outcome")) for r in rows)
    located = len(_points(rows))
    legend = "".join(f'<span><i class="dot" style="background:{c}"></i>{esc(o)} '
                     f'({counts.get(o, 0)})</span>' for o, c in OUTCOME_COLOURS.items())
    note_html = "".join(f"<p class=\"small\">{esc(n)}</p>" for n in notes)
    attribution_html = f'<p class="small">{esc(attribution)}</p>' if attribution else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{_CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title><style>{_CSS}</style></head>
<body>
<h1>{esc(title)}</h1>
<p class="meta">{len(rows)} places, generated {esc(generated)}. Highest priority first;
click a column to sort, a point to jump to its row. {located} of {len(rows)} places have
coordinates and appear on the map.</p>
<p class="legend">{legend}</p>
{_svg_map(rows, bbox)}
{attribution_html}{note_html}
<input id="filter" type="search" placeholder="filter rows (any text)" aria-label="filter rows">
{_table(rows)}
<script>{_JS}</script>
</body></html>
"""
