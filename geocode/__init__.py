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

from horeca.lean_imports import lazy_exports

# Imported on first use: keying imports `horeca.geocode.geo` without the gazetteer, and
# geopy (with the aiohttp it pulls in) loads only when online geocoding is asked for.
__getattr__ = lazy_exports(__name__, {
    "horeca.geocode.config": ("GeocodeConfig", "load_config"),
    "horeca.geocode.gazetteer": ("Gazetteer", "load_gazetteer"),
    "horeca.geocode.loaders": ("ImportSummary", "import_best", "import_segments"),
    "horeca.geocode.model": ("OSM_ATTRIBUTION", "PRECISIONS", "AddressQuery", "Answer",
                             "GeocodeSummary"),
    "horeca.geocode.online": ("OnlineGeocoder",),
    "horeca.geocode.query": ("build_query", "listing_query", "unit_query"),
    "horeca.geocode.run": ("geocode_pending",),
})

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
