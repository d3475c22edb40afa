"""The fixture server: a forward proxy on 127.0.0.1 mapping hosts to site folders."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from horeca.fixtures.server import parse_bbox, serve_sites

DEMO_SITES = Path(__file__).resolve().parents[1] / "fixtures" / "demo" / "sites"


@pytest.fixture()
def sites(tmp_path: Path) -> Path:
    root = tmp_path / "sites"
    shop = root / "shop.example"
    (shop / "place" / "cafe-1").mkdir(parents=True)
    (shop / "index.html").write_text("<html>home</html>", encoding="utf-8")
    (shop / "robots.txt").write_text("User-agent: *\nDisallow: /account/\n", encoding="utf-8")
    (shop / "place" / "cafe-1" / "index.html").write_text("<p>Café 1</p>", encoding="utf-8")
    (shop / "old.html").write_bytes(
        '<meta charset="windows-1252"><p>Caf\u00e9</p>'.encode("cp1252"))
    (shop / "_headers.json").write_text(
        json.dumps({"/place/*": {"X-Robots-Tag": "noai"}, "/*": {"tdm-reservation": "1"}}),
        encoding="utf-8")
    api = root / "osm.example" / "api"
    api.mkdir(parents=True)
    doc = {"version": 0.6, "generator": "test", "elements": [
        {"type": "node", "id": 1, "lat": 50.85, "lon": 4.35, "tags": {"name": "in"}},
        {"type": "way", "id": 2, "center": {"lat": 50.84, "lon": 4.36}, "tags": {"name": "w"}},
        {"type": "node", "id": 3, "lat": 51.20, "lon": 4.40, "tags": {"name": "out"}}]}
    (api / "interpreter.json").write_text(json.dumps(doc), encoding="utf-8")
    return root


@pytest.fixture()
def proxy(sites: Path) -> Iterator[str]:
    with serve_sites(sites) as url:
        yield url


def _opener(proxy: str) -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(urllib.request.ProxyHandler({"http": proxy}))


def test_proxy_form_request_maps_host_and_path_to_a_file(proxy: str) -> None:
    with _opener(proxy).open("http://shop.example/place/cafe-1/", timeout=5) as resp:
        assert resp.status == 200
        assert resp.read().decode("utf-8") == "<p>Café 1</p>"
        assert resp.headers["Content-Type"] == "text/html; charset=utf-8"


def test_origin_form_request_uses_the_host_header(proxy: str) -> None:
    req = urllib.request.Request(proxy + "/robots.txt", headers={"Host": "shop.example"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert resp.read().startswith(b"User-agent: *")
        assert resp.headers["Content-Type"].startswith("text/plain")


def test_directory_and_root_serve_index_and_queries_are_ignored(proxy: str) -> None:
    opener = _opener(proxy)
    assert opener.open("http://shop.example/", timeout=5).read() == b"<html>home</html>"
    assert opener.open("http://shop.example/place/cafe-1?x=1", timeout=5).status == 200


@pytest.mark.parametrize("url", ["http://nowhere.example/", "http://shop.example/missing/",
                                 "http://shop.example/_headers.json",
                                 "http://shop.example/../osm.example/api/interpreter.json"])
def test_unknown_host_missing_file_and_private_files_are_404(proxy: str, url: str) -> None:
    with pytest.raises(urllib.error.HTTPError) as err:
        _opener(proxy).open(url, timeout=5)
    assert err.value.code == 404


def test_headers_json_adds_headers_to_matching_paths(proxy: str) -> None:
    opener = _opener(proxy)
    detail = opener.open("http://shop.example/place/cafe-1/", timeout=5)
    assert detail.headers["X-Robots-Tag"] == "noai"
    assert detail.headers["tdm-reservation"] == "1"
    home = opener.open("http://shop.example/robots.txt", timeout=5)
    assert home.headers["tdm-reservation"] == "1" and home.headers["X-Robots-Tag"] is None


def test_page_charset_is_taken_from_its_meta_tag(proxy: str) -> None:
    resp = _opener(proxy).open("http://shop.example/old.html", timeout=5)
    assert resp.headers["Content-Type"] == "text/html; charset=windows-1252"
    assert "Café" in resp.read().decode("cp1252")


def test_head_returns_headers_without_a_body(proxy: str) -> None:
    req = urllib.request.Request("http://shop.example/", method="HEAD")
    resp = _opener(proxy).open(req, timeout=5)
    assert resp.status == 200 and resp.headers["Content-Length"] == "17"
    assert resp.read() == b""


def _names(resp) -> list[str]:
    return [e["tags"]["name"] for e in json.load(resp)["elements"]]


def test_overpass_endpoint_filters_to_the_query_bbox_by_get_and_post(proxy: str) -> None:
    opener = _opener(proxy)
    query = '[out:json];(node["amenity"](50.76,4.24,50.91,4.48);way(50.76,4.24,50.91,4.48);' \
            ");out center;"
    url = "http://osm.example/api/interpreter?data=" + urllib.parse.quote(query)
    assert _names(opener.open(url, timeout=5)) == ["in", "w"]
    body = urllib.parse.urlencode({"data": "[out:json][bbox:50.845,4.3,50.9,4.4];node;out;"})
    post = urllib.request.Request("http://osm.example/api/interpreter", data=body.encode())
    assert _names(opener.open(post, timeout=5)) == ["in"]
    raw = urllib.request.Request("http://osm.example/api/interpreter",
                                 data=b"[out:json];node(51,4,52,5);out;")
    assert _names(opener.open(raw, timeout=5)) == ["out"]
    assert _names(opener.open("http://osm.example/api/interpreter", timeout=5)) == \
        ["in", "w", "out"]


@pytest.mark.parametrize(("query", "expected"), [
    ("node(50.1,4.2,50.9,4.5);", (50.1, 4.2, 50.9, 4.5)),
    ("[bbox: 50.7 , 4.2,50.9,4.5];node;", (50.7, 4.2, 50.9, 4.5)),
    ('node["amenity"="cafe"];out;', None),
    ("node(50.9,4.2,50.1,4.5);", None),          # south above north: not a bbox
])
def test_parse_bbox(query: str, expected) -> None:
    assert parse_bbox(query) == expected


def test_concurrent_requests_are_all_answered(proxy: str) -> None:
    opener = _opener(proxy)

    def fetch(i: int) -> int:
        return opener.open(f"http://shop.example/place/cafe-1/?n={i}", timeout=5).status

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(fetch, range(40))) == [200] * 40


def test_the_port_is_released_after_the_context(sites: Path) -> None:
    with serve_sites(sites) as url:
        port = int(url.rsplit(":", 1)[1])
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_demo_sites_serve_through_the_proxy() -> None:
    with serve_sites(DEMO_SITES) as url:
        opener = _opener(url)
        robots = opener.open("http://gustoreviews.example/robots.txt", timeout=5).read()
        assert b"Disallow: /search" in robots
        page = opener.open("http://nomine.example/brussels/", timeout=5)
        assert page.headers["tdm-reservation"] == "1"
        query = urllib.parse.quote("[out:json];nwr(50.763,4.2435,50.9136,4.4826);out center;")
        inside = json.load(opener.open(
            f"http://overpass.example/api/interpreter?data={query}", timeout=5))["elements"]
        everything = json.load(opener.open("http://overpass.example/api/interpreter",
                                            timeout=5))["elements"]
        assert 0 < len(inside) < len(everything)


def test_cli_prints_the_proxy_url_and_serves(sites: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "horeca.fixtures.server", "--root",
                             str(sites)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        assert _opener(url).open("http://shop.example/", timeout=5).status == 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@given(st.floats(-89, 89), st.floats(-179, 179), st.floats(0, 1), st.floats(0, 1))
def test_parse_bbox_reads_back_any_box_written_in_overpass_ql(south, west, dlat, dlon) -> None:
    box = [f"{v:.6f}" for v in (south, west, south + dlat, west + dlon)]
    query = f'[out:json];node["amenity"="bar"]({",".join(box)});out;'
    assert parse_bbox(query) == tuple(float(v) for v in box)


def test_keep_alive_connection_answers_requests_in_turn(proxy: str) -> None:
    import http.client

    host, port = proxy.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        for path in ("/", "/place/cafe-1/", "/missing", "/"):
            conn.request("GET", f"http://shop.example{path}")
            resp = conn.getresponse()
            body = resp.read()
            assert resp.status == (404 if path == "/missing" else 200)
            assert resp.getheader("Connection") is None  # the connection stays open
        assert body == b"<html>home</html>"
    finally:
        conn.close()


def test_a_file_changed_on_disk_is_served_fresh(sites: Path, proxy: str) -> None:
    page = sites / "shop.example" / "index.html"
    assert _opener(proxy).open("http://shop.example/", timeout=5).read() == \
        b"<html>home</html>"
    page.write_text("<html>a longer home page</html>", encoding="utf-8")
    assert _opener(proxy).open("http://shop.example/", timeout=5).read() == \
        b"<html>a longer home page</html>"
    page.unlink()
    with pytest.raises(urllib.error.HTTPError) as err:
        _opener(proxy).open("http://shop.example/", timeout=5)
    assert err.value.code == 404


def test_a_malformed_request_gets_400_and_the_connection_closes(proxy: str) -> None:
    host, port = proxy.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"NONSENSE\r\n\r\n")
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400 ")


def test_preloaded_sites_answer_as_read_from_disk(sites: Path) -> None:
    with serve_sites(sites) as plain, serve_sites(sites, preload=True) as preloaded:
        for path in ("/", "/place/cafe-1/", "/place/cafe-1/index.html", "/place/cafe-1",
                     "/old.html", "/robots.txt"):
            a = _opener(plain).open(f"http://shop.example{path}", timeout=5)
            b = _opener(preloaded).open(f"http://shop.example{path}", timeout=5)
            assert (a.status, a.read(), a.headers["Content-Type"],
                    a.headers.get("X-Robots-Tag"), a.headers.get("tdm-reservation")) == \
                (b.status, b.read(), b.headers["Content-Type"],
                 b.headers.get("X-Robots-Tag"), b.headers.get("tdm-reservation"))
