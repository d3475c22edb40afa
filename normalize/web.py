"""Websites and e-mail addresses: canonical URLs and registered domains.

The registered domain ("resto-x.be" for "https://www.resto-x.be/menu") is what keying
compares. It comes from the Public Suffix List that tldextract bundles, read by
`public_suffix.py` (never downloaded: no network call). Hosts whose suffix is not in the
list (the demo world's `*.example` hosts, intranet names) fall back to their last two
labels.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from horeca.normalize.public_suffix import split_host

_TRACKING_PARAMS = frozenset(
    {"fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "mc_cid", "mc_eid",
     "igshid", "_ga", "_gl", "ref_src", "spm", "twclid", "ttclid", "srsltid", "_hsenc",
     "_hsmi", "mkt_tok", "oly_anon_id", "oly_enc_id", "vero_id", "wickedid", "s_kwcid"}
)
_TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "hsa_")
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)
_BROKEN_SCHEME = re.compile(r"^(https?)(?::/?|//)(?!/)", re.IGNORECASE)
_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_SEVERAL = re.compile(r"[\s,;|]+")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _is_ip(host: str) -> bool:
    if not (host[-1:].isdigit() or ":" in host):  # cheap pre-check: no name ends in a digit
        return False
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        return False


def _valid_host(host: str) -> bool:
    if not host or len(host) > 253:
        return False
    if _is_ip(host):
        return True
    if host == "localhost":
        return True
    labels = host.split(".")
    if len(labels) < 2:
        return False
    ascii_host = host.encode("idna").decode("ascii") if not host.isascii() else host
    return all(_HOST_LABEL.match(label) for label in ascii_host.split(".")) and not labels[
        -1
    ].isdigit()


def _idna_ok(host: str) -> bool:
    try:
        host.encode("idna")
        return True
    except UnicodeError:
        return False


def _normalize_one(url: str) -> str | None:
    url = url.strip().strip("<>\"'")
    if not url or "@" in url.split("/", 3)[2 if _SCHEME.match(url) else 0]:
        return None  # an e-mail address is not a website
    url = _BROKEN_SCHEME.sub(lambda m: m.group(1).lower() + "://", url, count=1)
    if url.startswith("//"):
        url = "http:" + url
    if not _SCHEME.match(url):
        url = "http://" + url
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        return None
    host = (parts.hostname or "").rstrip(".").lower()
    if not _idna_ok(host) or not _valid_host(host):
        return None
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{port}"
    query = urlencode(
        [
            (key, value)
            for key, value in parse_qsl(parts.query, keep_blank_values=True)
            if key.lower() not in _TRACKING_PARAMS
            and not key.lower().startswith(_TRACKING_PREFIXES)
        ]
    )
    return urlunsplit((scheme, netloc, parts.path or "/", query, ""))


@lru_cache(maxsize=131_072)
def normalize_url(url: str | None) -> str | None:
    """Canonical form of a website: scheme (http:// added when missing), lowercase host,
    no default port, no fragment, no tracking parameters (utm_*, fbclid, gclid, ...).

    >>> normalize_url("WWW.Resto-X.be/menu?utm_source=fb&lang=fr#top")
    'http://www.resto-x.be/menu?lang=fr'

    A field listing several URLs gives the first usable one; e-mail addresses, other
    schemes (mailto:, ftp:) and text without a plausible host give None.
    """
    if not url:
        return None
    for candidate in _SEVERAL.split(url.strip()[:2000]):
        if candidate:
            normalized = _normalize_one(candidate)
            if normalized:
                return normalized
    return None


def _host_registered_domain(host: str) -> str | None:
    if _is_ip(host):
        return host
    domain, suffix = split_host(host)
    if domain and suffix:
        return f"{domain}.{suffix}"
    labels = [label for label in host.split(".") if label]
    if len(labels) >= 2:  # suffix unknown to the PSL: treat the last label as the TLD
        return ".".join(labels[-2:])
    return None


@lru_cache(maxsize=131_072)
def registered_domain(url: str | None) -> str | None:
    """The registrable domain of a website URL or bare host, lowercase.

    >>> registered_domain("https://www.resto-x.be/menu")
    'resto-x.be'
    >>> registered_domain("http://shop.gustoreviews.example/b/1")
    'gustoreviews.example'
    """
    normalized = normalize_url(url)
    if normalized is None:
        return None
    host = urlsplit(normalized).hostname
    return _host_registered_domain(host) if host else None


_EMAIL = re.compile(r"[a-z0-9._%+'-]+@([a-z0-9.-]+\.[a-z0-9-]+)", re.IGNORECASE)


@lru_cache(maxsize=131_072)
def email_domain(email: str | None) -> str | None:
    """The registered domain of an e-mail address ("Info@Mail.Resto-X.be" -> "resto-x.be").

    Free-mail domains (gmail.com, ...) are returned as they are; whether they count as
    evidence is the caller's decision (see FREE_MAIL_DOMAINS).
    """
    if not email:
        return None
    match = _EMAIL.search(email.strip().removeprefix("mailto:")[:500])
    if not match:
        return None
    host = match.group(1).strip(".").lower()
    if not _valid_host(host):
        return None
    return _host_registered_domain(host)


# Domains shared by unrelated people: a match on them is no evidence of identity.
FREE_MAIL_DOMAINS: frozenset[str] = frozenset(
    {"gmail.com", "googlemail.com", "hotmail.com", "hotmail.be", "hotmail.fr", "outlook.com",
     "outlook.be", "live.com", "live.be", "msn.com", "yahoo.com", "yahoo.fr", "yahoo.be",
     "icloud.com", "me.com", "skynet.be", "telenet.be", "proximus.be", "scarlet.be",
     "voo.be", "gmx.com", "gmx.net", "gmx.de", "web.de", "aol.com", "protonmail.com",
     "proton.me", "orange.fr", "free.fr", "laposte.net", "mail.com", "pandora.be"}
)
