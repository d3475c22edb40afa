"""Websites and e-mail domains: canonical URLs, registered domains, offline PSL."""

from __future__ import annotations

import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from horeca.normalize import public_suffix
from horeca.normalize.web import email_domain, normalize_url, registered_domain


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("WWW.Resto-X.be/menu?utm_source=fb&lang=fr#top", "http://www.resto-x.be/menu?lang=fr"),
        ("https://www.resto-x.be", "https://www.resto-x.be/"),
        ("https://www.resto-x.be:443/", "https://www.resto-x.be/"),
        ("http://www.resto-x.be:8080/a", "http://www.resto-x.be:8080/a"),
        ("resto.be", "http://resto.be/"),
        ("//resto.be/x", "http://resto.be/x"),
        ("http//www.resto.be", "http://www.resto.be/"),
        ("https:/www.resto.be", "https://www.resto.be/"),
        ("www.resto.be/?fbclid=abc&gclid=x&id=3", "http://www.resto.be/?id=3"),
        ("www.a.be, www.b.be", "http://www.a.be/"),
        ("  <https://resto.be/>  ", "https://resto.be/"),
        ("http://gustoreviews.example/brussels/", "http://gustoreviews.example/brussels/"),
        ("http://127.0.0.1:8000/x", "http://127.0.0.1:8000/x"),
    ],
)
def test_normalize_url(url: str, expected: str) -> None:
    assert normalize_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [None, "", "n/a", "info@resto.be", "mailto:info@resto.be", "javascript:void(0)",
     "ftp://resto.be/", "resto", "http://", "http://-bad-.be/", "http://a..be/"],
)
def test_normalize_url_rejects_non_websites(url: str | None) -> None:
    assert normalize_url(url) is None


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://www.resto-x.be/menu", "resto-x.be"),
        ("resto-x.be", "resto-x.be"),
        ("http://shop.resto-x.be/a/b?c=1", "resto-x.be"),
        ("https://www.bbc.co.uk/", "bbc.co.uk"),
        ("https://mon-resto.blogspot.com/", "mon-resto.blogspot.com"),  # private suffix kept
        ("http://shop.gustoreviews.example/b/1", "gustoreviews.example"),  # not in the PSL
        ("http://127.0.0.1:8000/", "127.0.0.1"),
        ("n/a", None),
        (None, None),
    ],
)
def test_registered_domain(url: str | None, expected: str | None) -> None:
    assert registered_domain(url) == expected


@pytest.mark.parametrize(
    ("email", "expected"),
    [
        ("info@resto-x.be", "resto-x.be"),
        ("Info@Mail.Resto-X.be", "resto-x.be"),
        ("mailto:info@resto-x.be", "resto-x.be"),
        ("Réservations: info@resto-x.be", "resto-x.be"),
        ("someone@gmail.com", "gmail.com"),
        ("not an email", None),
        ("a@b", None),
        (None, None),
    ],
)
def test_email_domain(email: str | None, expected: str | None) -> None:
    assert email_domain(email) == expected


def test_public_suffix_list_comes_from_the_bundled_snapshot_without_network(monkeypatch) -> None:
    attempts: list[tuple] = []

    def refuse(*args, **kwargs):
        attempts.append(args)  # recorded: a library may swallow the error and fall back
        raise OSError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    public_suffix._trie.cache_clear()
    assert public_suffix.split_host("www.some-new-name.co.uk") == ("some-new-name", "co.uk")
    assert attempts == []


def _tldextract_split(extractor, host: str) -> tuple[str, str]:
    result = extractor(host)
    return (result.domain, result.suffix) if result.suffix else ("", "")


def test_public_suffixes_agree_with_tldextract_on_every_rule_of_the_list() -> None:
    # horeca reads tldextract's bundled list itself (tldextract takes a quarter of a
    # second to start); for each rule, hosts at and below it, wildcards and exceptions
    # included, split exactly as tldextract splits them.
    import tldextract

    extractor = tldextract.TLDExtract(cache_dir=None, suffix_list_urls=(),
                                      fallback_to_snapshot=True,
                                      include_psl_private_domains=True)
    rules = public_suffix.parse_rules(public_suffix.snapshot_path().read_text("utf-8"))
    assert len(rules) > 5_000 and "co.uk" in rules and "*.ck" in rules and "!www.ck" in rules
    hosts = ["resto-x.be", "a.b.resto-x.co.uk", "ck", "x.ck", "www.ck", "a.www.ck", "be",
             "a..be", ".be", "be.", "xn--80ak6aa92e.com", "shop.xn--p1ai", "EXAMPLE.COM",
             "gustoreviews.example", "localhost", "a.city.kawasaki.jp", "x.y.kawasaki.jp"]
    for rule in rules:
        bare = rule.lstrip("!").removeprefix("*.")
        hosts += [bare, f"shop.{bare}", f"www.shop.{bare}", f"a.b.{bare}"]
    mismatches = [(h, public_suffix.split_host(h), _tldextract_split(extractor, h))
                  for h in hosts
                  if public_suffix.split_host(h) != _tldextract_split(extractor, h)]
    assert not mismatches, mismatches[:10]


# --- properties -----------------------------------------------------------------------

LABEL = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=12)
HOST = st.builds(lambda a, tld: f"{a}.{tld}", LABEL, st.sampled_from(["be", "com", "co.uk",
                                                                       "brussels", "example"]))
PATH = st.lists(LABEL, max_size=3).map(lambda parts: "/" + "/".join(parts))
URL = st.builds(
    lambda scheme, www, host, path, q: f"{scheme}{www}{host}{path}{q}",
    st.sampled_from(["", "http://", "https://", "HTTP://", "//"]),
    st.sampled_from(["", "www.", "WWW.", "shop."]),
    HOST,
    PATH,
    st.sampled_from(["", "?utm_source=x", "?id=1&utm_medium=y", "#frag", "?a=1#b"]),
)


@given(URL)
@settings(max_examples=200, deadline=None)
def test_normalize_url_is_idempotent_and_domain_ignores_scheme_www_and_path(url: str) -> None:
    once = normalize_url(url)
    assert once is not None
    assert normalize_url(once) == once
    assert "utm_" not in once and "#" not in once
    bare = url.split("//", 1)[-1].lower().removeprefix("www.").removeprefix("shop.")
    host = bare.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    assert registered_domain(url) == registered_domain(host) == host


@given(st.text(max_size=60))
@settings(max_examples=300, deadline=None)
def test_web_normalisers_never_raise(text: str) -> None:
    url = normalize_url(text)
    assert url is None or normalize_url(url) == url
    domain = registered_domain(text)
    assert domain is None or domain == domain.lower()
    assert email_domain(text) is None or "@" not in email_domain(text)
