"""A local stand-in for Nominatim's `/search` endpoint, for tests, benchmarks and demos.

Serves on 127.0.0.1 only and answers in Nominatim's `jsonv2` shape. Every request is
recorded (time, query parameters, user agent) so callers can check the request rate and
count requests. Answers are deterministic: a street query gets a house- or street-level
result at a position derived from the query text, a street containing "nowhere" gets
`[]`, `fail` lists HTTP statuses to answer the first requests with (e.g. [503, 429]) and
`delays` seconds to wait before answering the first requests (to provoke time-outs).
Point a geocoder at it with `domain="127.0.0.1:<port>", scheme="http"`.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Recorded:
    at: float                       # time.monotonic() when the request arrived
    path: str
    params: dict[str, str]
    user_agent: str


@dataclass
class EmulatorState:
    fail: list[int] = field(default_factory=list)
    delays: list[float] = field(default_factory=list)
    requests: list[Recorded] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def fake_answer(params: dict[str, str]) -> list[dict[str, Any]]:
    """A jsonv2 /search answer for a query, stable across runs."""
    street = params.get("street", "")
    if "nowhere" in street.lower():
        return []
    text = "|".join(f"{k}={params[k]}" for k in sorted(params))
    digest = hashlib.sha256(text.encode()).digest()
    lat = 50.80 + digest[0] / 255 * 0.08
    lon = 4.30 + digest[1] / 255 * 0.12
    has_number = street[:1].isdigit()
    number, _, road = street.partition(" ") if has_number else ("", "", street)
    address = {"road": road.title() or "Unknown", "postcode": params.get("postalcode", ""),
               "city": params.get("city", "Bruxelles - Brussel"), "country": "België / Belgique",
               "country_code": "be"}
    if has_number:
        address["house_number"] = number
    display = ", ".join(v for v in (number, address["road"], address["city"],
                                    address["postcode"], "België / Belgique") if v)
    return [{
        "place_id": int.from_bytes(digest[2:6], "big"),
        "licence": "Data © OpenStreetMap contributors, ODbL 1.0. http://osm.org/copyright",
        "osm_type": "node" if has_number else "way",
        "osm_id": int.from_bytes(digest[6:10], "big"),
        "lat": f"{lat:.7f}", "lon": f"{lon:.7f}",
        "category": "place" if has_number else "highway",
        "type": "house" if has_number else "residential",
        "place_rank": 30 if has_number else 26,
        "importance": 0.0001,
        "addresstype": "place" if has_number else "road",
        "name": "" if has_number else address["road"],
        "display_name": display,
        "address": address,
        "boundingbox": [f"{lat - 0.0001:.7f}", f"{lat + 0.0001:.7f}",
                        f"{lon - 0.0001:.7f}", f"{lon + 0.0001:.7f}"],
    }]


def _handler(state: EmulatorState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            params = {k: v[-1] for k, v in parse_qs(url.query).items()}
            with state.lock:
                state.requests.append(Recorded(time.monotonic(), url.path, params,
                                               self.headers.get("User-Agent", "")))
                status = state.fail.pop(0) if state.fail else 200
                delay = state.delays.pop(0) if state.delays else 0.0
            if delay:
                time.sleep(delay)
            if status != 200:
                body = json.dumps({"error": {"code": status, "message": "emulated error"}})
                self._send(status, body, {"Retry-After": "1"} if status == 429 else {})
            elif url.path != "/search":
                self._send(404, json.dumps({"error": "not found"}), {})
            else:
                self._send(200, json.dumps(fake_answer(params)), {})

        def _send(self, status: int, body: str, headers: dict[str, str]) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def serve_nominatim(fail: list[int] | None = None, delays: list[float] | None = None
                    ) -> Iterator[tuple[str, EmulatorState]]:
    """Run the emulator on a free loopback port; yields ("127.0.0.1:<port>", state)."""
    state = EmulatorState(fail=list(fail or []), delays=list(delays or []))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
