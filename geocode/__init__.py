"""Geocoding: cache -> offline gazetteer -> online geocoder (geopy), and the coordinate gap.

Library entry points (the CLI in `commands.py` is a thin layer over them):

* `geocode_pending(db, region, online=..., config=...) -> GeocodeSummary` — geocode the
  listings and active register units that need it; results in `entity_geocodes`, every
  answer (offline or online, found or not) in the `geocodes` cache.
* `import_segments(db, path)` / `import_best(db, path, region=...)` — load a street-segment
  gazetteer (the demo's `gazetteer.csv`) or a BeST Address CSV into the store.
* `load_gazetteer(db)` and `Gazetteer.match(query)` — the offline matcher on its own;
  `build_query(...)` makes the normalised `AddressQuery` it takes.
* `GeocodeConfig` / `load_config(path)` — the `[geocode]` settings (docs/geocoding.md).

Answers from Nominatim or Photon are OpenStreetMap data: show `OSM_ATTRIBUTION` wherever
such positions are displayed or exported.
"""

from horeca.geocode.config import GeocodeConfig, load_config
from horeca.geocode.gazetteer import Gazetteer, load_gazetteer
from horeca.geocode.loaders import ImportSummary, import_best, import_segments
from horeca.geocode.model import (
    OSM_ATTRIBUTION,
    PRECISIONS,
    AddressQuery,
    Answer,
    GeocodeSummary,
)
from horeca.geocode.query import build_query, listing_query, unit_query
from horeca.geocode.run import geocode_pending

__all__ = [
    "OSM_ATTRIBUTION",
    "PRECISIONS",
    "AddressQuery",
    "Answer",
    "Gazetteer",
    "GeocodeConfig",
    "GeocodeSummary",
    "ImportSummary",
    "OnlineGeocoder",
    "build_query",
    "geocode_pending",
    "import_best",
    "import_segments",
    "listing_query",
    "load_config",
    "load_gazetteer",
    "unit_query",
]


def __getattr__(name: str) -> object:
    # geopy (and the aiohttp it pulls in) loads only when online geocoding is asked for:
    # every horeca command imports this package, few of them go online.
    if name == "OnlineGeocoder":
        from horeca.geocode.online import OnlineGeocoder

        return OnlineGeocoder
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
