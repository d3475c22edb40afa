"""Online geocoding through geopy, within the public Nominatim usage policy.

* Structured queries (street / postalcode / city / country) for Nominatim; a one-line
  query for providers that only take text (Photon and most others).
* At most one request per `min_delay_seconds` for the whole process: geopy's
  `RateLimiter` spaces this geocoder's calls, and `PROCESS_THROTTLE`, a module-level lock
  and clock, spaces every request any geocoder of this process sends, retries included.
* Retries with exponential backoff after time-outs, 429 (honouring Retry-After) and 5xx;
  no retry after 4xx; 401/402/403 stop online geocoding for the rest of the run, as do
  `max_consecutive_errors` failures in a row and the per-run request cap.
* Nothing here touches the cache: the caller looks up before and stores after, so a
  query is sent at most once ever (errors excepted: they are retried on the next run).
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import Any

from geopy.adapters import AdapterHTTPError, RequestsAdapter
from geopy.exc import (
    ConfigurationError,
    GeocoderAuthenticationFailure,
    GeocoderInsufficientPrivileges,
    GeocoderNotFound,
    GeocoderParseError,
    GeocoderQueryError,
    GeocoderQuotaExceeded,
    GeocoderRateLimited,
    GeocoderServiceError,
    GeocoderTimedOut,
    GeocoderUnavailable,
    GeopyError,
)
from geopy.extra.rate_limiter import RateLimiter
from geopy.geocoders import Nominatim, get_geocoder_for_service
from geopy.location import Location

from horeca.errors import UserError
from horeca.geocode.config import GeocodeConfig
from horeca.geocode.model import (
    OSM_ATTRIBUTION,
    STATUS_ERROR,
    STATUS_NOT_FOUND,
    STATUS_OK,
    AddressQuery,
    Answer,
    query_json,
)

COUNTRY_NAMES = {"BE": "Belgium", "NL": "Netherlands", "FR": "France", "LU": "Luxembourg",
                 "DE": "Germany"}
_SAMPLE_AGENTS = ("geopy/", "my-application", "my_user_agent", "specify_your_app_name_here",
                  "python-requests", "mozilla/")


class Throttle:
    """Spaces request starts by at least `interval` seconds across threads.

    The lock is held while sleeping on purpose: callers queue, so two threads can never
    both decide the slot is free.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._lock = threading.Lock()
        self._last: float | None = None
        self._clock = clock
        self._sleep = sleep

    def wait(self, interval: float) -> None:
        with self._lock:
            now = self._clock()
            if self._last is not None:
                delay = self._last + interval - now
                if delay > 0:
                    self._sleep(delay)
                    now = self._clock()
            self._last = now


PROCESS_THROTTLE = Throttle()


class NominatimJsonV2(Nominatim):
    """Nominatim asking for `format=jsonv2` (geopy asks for `json`): same coordinates,
    plus `category` and `place_rank`, which tell how precise the answer is."""

    def _construct_url(self, base_api: str, params: dict[str, Any]) -> str:
        if params.get("format") == "json":
            params = {**params, "format": "jsonv2"}
        return super()._construct_url(base_api, params)


def check_user_agent(user_agent: str | None) -> str:
    """The user agent must name the application and a way to contact its operator."""
    agent = (user_agent or "").strip()
    fix = ('set user_agent in [geocode] of the config, or --user-agent, e.g. '
           '"horeca/0.1 (inspection-unit@example.org)"')
    if not agent:
        raise UserError("going online needs an identifying user agent", path="--user-agent",
                        fix=fix)
    if agent.lower().startswith(_SAMPLE_AGENTS):
        raise UserError(f"user agent {agent!r} is a library default, not an identification",
                        path="--user-agent", fix=fix)
    if "@" not in agent and "http" not in agent.lower():
        raise UserError(f"user agent {agent!r} gives no contact (e-mail or URL)",
                        path="--user-agent", fix=fix)
    return agent


def structured_query(query: AddressQuery) -> dict[str, str]:
    """Nominatim's structured search: the number goes in front of the street."""
    payload: dict[str, str] = {}
    if query.street:
        number = f"{query.number}{query.suffix} " if query.number is not None else ""
        payload["street"] = f"{number}{query.street}"
    if query.postcode:
        payload["postalcode"] = query.postcode
    elif query.locality:
        payload["city"] = query.locality
    payload["country"] = COUNTRY_NAMES.get(query.country, query.country)
    return payload


def one_line_query(payload: dict[str, str]) -> str:
    parts = [payload.get("street"), " ".join(filter(None, (payload.get("postalcode"),
                                                           payload.get("city")))),
             payload.get("country")]
    return ", ".join(p for p in parts if p)


def nominatim_precision(raw: dict[str, Any]) -> str:
    address = raw.get("address") or {}
    category = raw.get("category") or raw.get("class") or ""
    kind = raw.get("type") or ""
    addresstype = raw.get("addresstype") or ""
    if ("house_number" in address or kind in ("house", "building")
            or addresstype in ("house", "building") or category == "building"):
        return "house_number"
    if category == "highway" or addresstype in ("road", "street"):
        return "street"
    if kind in ("postcode", "postal_code") or addresstype == "postcode":
        return "postcode"
    return "locality"


def photon_precision(raw: dict[str, Any]) -> str:
    props = raw.get("properties") or {}
    kind = props.get("type") or ""
    if props.get("housenumber") or kind == "house":
        return "house_number"
    if kind == "street":
        return "street"
    return "locality"


def precision_of(provider: str, raw: dict[str, Any]) -> str:
    """How precise an online answer is. Providers whose answers we cannot read are
    counted as `locality`, the coarsest level, rather than trusted blindly."""
    if provider == "nominatim":
        return nominatim_precision(raw)
    if provider == "photon":
        return photon_precision(raw)
    return "locality"


def classify(err: GeopyError) -> tuple[str, bool]:
    """(reason, worth retrying) for a geopy error."""
    status = err.__cause__.status_code if isinstance(err.__cause__, AdapterHTTPError) else None
    if isinstance(err, GeocoderRateLimited):
        return "rate_limited", True
    if isinstance(err, GeocoderAuthenticationFailure | GeocoderInsufficientPrivileges
                  | GeocoderQuotaExceeded):
        return "refused", False
    if isinstance(err, GeocoderQueryError):
        return "bad_query", False
    if isinstance(err, GeocoderParseError):
        return "bad_response", True
    if status is not None and status >= 500:
        # geopy maps 503 and 504 to GeocoderTimedOut; the status says what happened.
        return ("unavailable" if status in (502, 503, 504) else "service_error"), True
    if isinstance(err, GeocoderTimedOut):
        return "timeout", True
    if isinstance(err, GeocoderUnavailable):
        return "unavailable", True
    if isinstance(err, GeocoderServiceError):
        return "service_error", True
    return "error", False


class OnlineGeocoder:
    """One provider, configured once per run; `lookup` never raises for provider errors."""

    def __init__(self, config: GeocodeConfig, *, throttle: Throttle = PROCESS_THROTTLE,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.config = config
        self.provider = config.provider
        self.provider_id = config.provider_id
        self.user_agent = check_user_agent(config.user_agent)
        self.throttle = throttle
        self._sleep = sleep
        self.geocoder = _build_geocoder(config, self.user_agent)
        # Retries are ours (backoff, Retry-After, cap); the limiter only spaces calls.
        self._limited = RateLimiter(self._send, min_delay_seconds=config.min_delay_seconds,
                                    max_retries=0, swallow_exceptions=False,
                                    error_wait_seconds=config.min_delay_seconds)
        self.requests = 0
        self.request_times: list[float] = []
        self.consecutive_errors = 0
        self.stopped: str | None = None

    @property
    def attribution(self) -> str | None:
        return OSM_ATTRIBUTION if self.provider in ("nominatim", "photon") else None

    def _send(self, payload: dict[str, str] | str) -> Location | None:
        self.throttle.wait(self.config.min_delay_seconds)
        self.requests += 1
        self.request_times.append(time.monotonic())
        if self.provider == "nominatim":
            return self.geocoder.geocode(payload, exactly_one=True, addressdetails=True,
                                         country_codes=self._country_codes(payload))
        return self.geocoder.geocode(payload, exactly_one=True)

    def _country_codes(self, payload: dict[str, str] | str) -> str | None:
        if isinstance(payload, dict):
            for code, name in COUNTRY_NAMES.items():
                if payload.get("country") == name:
                    return code.lower()
        return None

    def _cap_reached(self) -> bool:
        cap = self.config.max_requests_per_run
        return bool(cap) and self.requests >= cap

    def lookup(self, query: AddressQuery) -> Answer:
        payload = structured_query(query)
        asked = query_json(payload)
        sent: dict[str, str] | str = payload if self.provider == "nominatim" \
            else one_line_query(payload)

        def error(reason: str, detail: str = "") -> Answer:
            return Answer(provider=self.provider_id, query_key=query.key, query=asked,
                          status=STATUS_ERROR, error=f"{reason}: {detail}" if detail else reason)

        if self.stopped:
            return error("online_stopped", self.stopped)
        if self._cap_reached():
            self.stopped = f"request cap of {self.config.max_requests_per_run} reached"
            return error("online_stopped", self.stopped)
        for attempt in range(self.config.max_retries + 1):
            try:
                location = self._limited(sent)
            except GeopyError as err:
                if isinstance(err, ConfigurationError | GeocoderNotFound):
                    raise UserError(f"geocoder {self.provider!r}: {err}", path="[geocode]",
                                    fix="check provider and provider_options") from None
                reason, retry = classify(err)
                if reason == "refused":
                    self.stopped = f"the provider refused our requests ({err})"
                    return error(reason, str(err)[:300])
                if retry and attempt < self.config.max_retries and not self._cap_reached():
                    self._sleep(self._backoff(err, attempt))
                    continue
                self.consecutive_errors += 1
                if self.consecutive_errors >= self.config.max_consecutive_errors:
                    self.stopped = f"{self.consecutive_errors} failures in a row (last: {reason})"
                return error(reason, str(err)[:300])
            self.consecutive_errors = 0
            if location is None:
                return Answer(provider=self.provider_id, query_key=query.key, query=asked,
                              status=STATUS_NOT_FOUND)
            raw = location.raw if isinstance(location.raw, dict) else {}
            return Answer(provider=self.provider_id, query_key=query.key, query=asked,
                          status=STATUS_OK, lat=round(location.latitude, 7),
                          lon=round(location.longitude, 7),
                          precision=precision_of(self.provider, raw), method="online",
                          matched=(location.address or "")[:300])
        raise AssertionError("unreachable: the loop returns on its last attempt")

    def _backoff(self, err: GeopyError, attempt: int) -> float:
        wait = self.config.retry_backoff_seconds * (2 ** attempt)
        retry_after = getattr(err, "retry_after", None)
        if isinstance(retry_after, int | float) and retry_after > wait:
            wait = float(retry_after)
        return min(wait, 300.0)


def _build_geocoder(config: GeocodeConfig, user_agent: str) -> Any:
    options: dict[str, Any] = dict(config.provider_options)
    options.setdefault("user_agent", user_agent)
    options.setdefault("timeout", config.timeout_seconds)
    # Transport-level retries would bypass the throttle; retries are ours.
    options.setdefault("adapter_factory", functools.partial(RequestsAdapter, max_retries=0))
    if config.domain:
        options.setdefault("domain", config.domain)
    if config.scheme:
        options.setdefault("scheme", config.scheme)
    if config.provider == "nominatim":
        cls: Any = NominatimJsonV2
    else:
        try:
            cls = get_geocoder_for_service(config.provider)
        except GeopyError:
            raise UserError(f"unknown geocoding provider {config.provider!r}", path="[geocode]",
                            fix="use a geopy service name: nominatim, photon, ...") from None
    try:
        return cls(**options)
    except (TypeError, ConfigurationError) as err:
        raise UserError(f"cannot set up geocoder {config.provider!r}: {err}",
                        path="[geocode.provider_options]",
                        fix="give only the options this geopy geocoder accepts") from None
