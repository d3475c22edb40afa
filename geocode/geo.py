"""Small pure geometry: distances, interpolation, centroids, coordinate sanity."""

from __future__ import annotations

import math
from collections.abc import Iterable

EARTH_RADIUS_M = 6_371_008.8  # mean radius (IUGG); metres


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def lerp(a: tuple[float, float], b: tuple[float, float], t: float) -> tuple[float, float]:
    """The point a fraction t of the way from a to b (straight line in degrees: at street
    scale the error against a geodesic is far below a house's width)."""
    return (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t)


def centroid(points: Iterable[tuple[float, float]]) -> tuple[float, float] | None:
    n = 0
    sum_lat = sum_lon = 0.0
    for lat, lon in points:
        sum_lat += lat
        sum_lon += lon
        n += 1
    return (sum_lat / n, sum_lon / n) if n else None


def valid_position(lat: object, lon: object) -> bool:
    """A usable WGS84 position: numbers in range, and not the (0, 0) placeholder that
    platforms emit when they have none."""
    if not isinstance(lat, int | float) or not isinstance(lon, int | float):
        return False
    if isinstance(lat, bool) or isinstance(lon, bool):
        return False
    if math.isnan(lat) or math.isnan(lon):
        return False
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        return False
    return not (abs(lat) < 1e-9 and abs(lon) < 1e-9)
