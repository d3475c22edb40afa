"""Geocoding settings: the `[geocode]` table of a TOML file, overridden by CLI options.

    [geocode]
    online = false                  # true: send what the gazetteer cannot place online
    provider = "nominatim"          # any geopy service name: nominatim, photon, ...
    user_agent = "horeca/0.1 (inspection-unit@example.org)"   # required to go online
    # domain = "nominatim.internal.example:8080"   # a self-hosted server
    # scheme = "https"
    min_delay_seconds = 1.0         # between two requests, for the whole process
    timeout_seconds = 10
    max_retries = 2                 # per query, after a time-out, 429 or 5xx
    retry_backoff_seconds = 2.0     # doubled at each retry (or the server's Retry-After)
    max_consecutive_errors = 5      # then stop going online for this run
    max_requests_per_run = 2500     # 0 = no cap (self-hosted servers only)
    country = "BE"
    gap_threshold_m = 250           # a listing this far from its address is flagged
    fuzzy_cutoff = 85               # rapidfuzz similarity for a misspelt street
    workers = 0                     # offline matching of large runs: 2 = in a second
                                    # process while the first reads and writes, 1 = in
                                    # one process, 0 = 2 when another core looks idle

    [geocode.provider_options]      # passed to the geopy geocoder as is (api_key, ...)

The public Nominatim server's usage policy sets floors this module enforces: at most one
request per second, an identifying user agent, and no bulk jobs (hence the cap).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from horeca.errors import UserError
from horeca.tomlfile import read_toml

ENV_CONFIG = "HORECA_GEOCODE_CONFIG"
PUBLIC_NOMINATIM = "nominatim.openstreetmap.org"


@dataclass(frozen=True)
class GeocodeConfig:
    online: bool = False
    provider: str = "nominatim"
    user_agent: str | None = None
    domain: str | None = None
    scheme: str | None = None
    min_delay_seconds: float = 1.0
    timeout_seconds: float = 10.0
    max_retries: int = 2
    retry_backoff_seconds: float = 2.0
    max_consecutive_errors: int = 5
    max_requests_per_run: int = 2500
    country: str = "BE"
    gap_threshold_m: float = 250.0
    fuzzy_cutoff: float = 85.0
    workers: int = 0
    provider_options: dict[str, Any] = field(default_factory=dict)

    @property
    def public_nominatim(self) -> bool:
        domain = self.domain or PUBLIC_NOMINATIM
        return self.provider == "nominatim" and domain == PUBLIC_NOMINATIM

    @property
    def provider_id(self) -> str:
        """Names the provider in the cache: a self-hosted server's answers are its own."""
        if self.domain and not self.public_nominatim:
            return f"{self.provider}@{self.domain}"
        return self.provider


_TYPES: dict[str, tuple[type, ...]] = {
    "online": (bool,), "provider": (str,), "user_agent": (str,), "domain": (str,),
    "scheme": (str,), "min_delay_seconds": (int, float), "timeout_seconds": (int, float),
    "max_retries": (int,), "retry_backoff_seconds": (int, float),
    "max_consecutive_errors": (int,), "max_requests_per_run": (int,), "country": (str,),
    "gap_threshold_m": (int, float), "fuzzy_cutoff": (int, float), "workers": (int,),
    "provider_options": (dict,),
}


def config_from_dict(data: dict[str, Any], where: str = "geocode config") -> GeocodeConfig:
    known = {f.name for f in fields(GeocodeConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise UserError(f"unknown setting(s) in [geocode]: {', '.join(unknown)}", path=where,
                        fix=f"use only: {', '.join(sorted(known))}")
    values: dict[str, Any] = {}
    for name, value in data.items():
        types = _TYPES[name]
        if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
            raise UserError(f"[geocode] {name} has the wrong type ({type(value).__name__})",
                            path=where, fix=f"write {name} as {types[0].__name__}")
        values[name] = float(value) if float in types else value
    config = replace(GeocodeConfig(), **values)
    check_config(config, where)
    return config


def check_config(config: GeocodeConfig, where: str = "geocode config") -> None:
    if config.min_delay_seconds < 0 or config.timeout_seconds <= 0:
        raise UserError("min_delay_seconds must be >= 0 and timeout_seconds > 0", path=where,
                        fix="use e.g. min_delay_seconds = 1.0, timeout_seconds = 10")
    if config.max_retries < 0 or config.max_consecutive_errors < 1:
        raise UserError("max_retries must be >= 0 and max_consecutive_errors >= 1",
                        path=where, fix="use e.g. max_retries = 2, max_consecutive_errors = 5")
    if config.retry_backoff_seconds < config.min_delay_seconds:
        raise UserError("retry_backoff_seconds must be at least min_delay_seconds", path=where,
                        fix="raise retry_backoff_seconds")
    if config.max_requests_per_run < 0:
        raise UserError("max_requests_per_run must be >= 0", path=where,
                        fix="use 0 for no cap (self-hosted servers only)")
    if config.public_nominatim:
        if config.min_delay_seconds < 1.0:
            raise UserError("the public Nominatim server allows at most 1 request per second",
                            path=where, fix="set min_delay_seconds = 1.0 or more, or use "
                            "domain = your own Nominatim server")
        if config.max_requests_per_run == 0:
            raise UserError("the public Nominatim server forbids bulk geocoding: a per-run "
                            "request cap is required", path=where,
                            fix="set max_requests_per_run (e.g. 2500) or use your own server")
    if config.workers not in (0, 1, 2):
        raise UserError("workers must be 0 (automatic), 1 or 2", path=where,
                        fix="use workers = 0 (a second process when a core is idle), 1 or 2")
    if not 0 < config.fuzzy_cutoff <= 100 or config.gap_threshold_m <= 0:
        raise UserError("fuzzy_cutoff must be in (0, 100] and gap_threshold_m > 0", path=where,
                        fix="use e.g. fuzzy_cutoff = 85, gap_threshold_m = 250")


def load_config(path: str | Path | None = None) -> GeocodeConfig:
    """Defaults, overridden by the [geocode] table of `path` (or $HORECA_GEOCODE_CONFIG).

    Other top-level tables are ignored, so one settings file can serve several commands.
    """
    path = path or os.environ.get(ENV_CONFIG)
    if not path:
        return GeocodeConfig()
    p = Path(path)
    data = read_toml(p, what="geocode config", option="--config")
    section = data.get("geocode", {})
    if not isinstance(section, dict):
        raise UserError("[geocode] must be a table", path=p, fix="write a [geocode] section")
    return config_from_dict(section, str(p))


def with_overrides(config: GeocodeConfig, **overrides: Any) -> GeocodeConfig:
    """Apply CLI options that were given (None = not given), then re-check."""
    given = {k: v for k, v in overrides.items() if v is not None}
    if not given:
        return config
    updated = replace(config, **given)
    check_config(updated, "command-line options")
    return updated
