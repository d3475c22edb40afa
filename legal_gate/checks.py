"""What a source's site says about being crawled, and whether a crawl may start.

Pure parsers (terms text and hash, TDMRep file / header / meta, robots.txt with RFC 9309
status rules) and a small fetch layer (urllib, optional forward proxy, the source's user
agent, a timeout). `preflight` runs before every crawl and raises `CrawlRefused`;
`gate_crawl` is what the crawl runner calls: it audits every refusal.

The terms hash
--------------
`terms_sha256` is the SHA-256 (hex) of the terms page's *visible text*, normalised:

1. HTML is parsed with lxml; the contents of <head>, <script>, <style>, <noscript>,
   <template>, comments, and elements with a `hidden` attribute are dropped.
2. Every element that is not an inline phrase element (a, b, i, em, strong, span, small,
   sub, sup, u, code, abbr, cite, q, mark, s, del, ins, time, data, dfn, kbd, samp, var,
   bdi, bdo, font, label, wbr) starts and ends a block; <br> ends a block.
3. Each block's text is Unicode NFC-normalised, soft hyphens and zero-width characters are
   removed, and every run of whitespace (including non-breaking spaces) becomes one space.
   Empty blocks are dropped. Case and punctuation are kept.
4. The blocks are joined with one space and the UTF-8 bytes are hashed.

So re-indenting, changing classes, styles, scripts, attributes, tags of the same kind
(div -> p, b -> strong) or the page <title> leaves the hash alone; changing, adding or
removing any visible word, number or punctuation mark changes it. A text/plain terms
page is treated the same way with each line as a block.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import sqlite_utils
from protego import Protego

from horeca.errors import UserError
from horeca.legal_gate import audit
from horeca.legal_gate.config import SourceConfig, host_in_domains
from horeca.store import transaction
from horeca.store.runs import now_iso

DEFAULT_TIMEOUT_S = 15.0
MAX_BODY_BYTES = 5_000_000
TDMREP_PATH = "/.well-known/tdmrep.json"
ROBOTS_PATH = "/robots.txt"

# --------------------------------------------------------------------------- terms text

_SKIP_TAGS = frozenset({"head", "script", "style", "noscript", "template"})
_INLINE_TAGS = frozenset({
    "a", "abbr", "b", "bdi", "bdo", "cite", "code", "data", "del", "dfn", "em", "font", "i",
    "ins", "kbd", "label", "mark", "q", "s", "samp", "small", "span", "strong", "sub", "sup",
    "time", "u", "var", "wbr",
})
_INVISIBLE_CHARS = dict.fromkeys(map(ord, "\u00ad\u200b\u200c\u200d\u2060\ufeff"))
_SPACES = re.compile(r"\s+")


def _clean_block(text: str) -> str:
    text = unicodedata.normalize("NFC", text).translate(_INVISIBLE_CHARS)
    return _SPACES.sub(" ", text).strip()


def _charset(content_type: str | None) -> str | None:
    match = re.search(r"charset=[\"']?([\w.:-]+)", content_type or "", re.IGNORECASE)
    return match.group(1) if match else None


def _html_blocks(body: bytes, content_type: str | None) -> list[str]:
    import lxml.etree
    import lxml.html

    charset = _charset(content_type)
    try:
        source: bytes | str = body.decode(charset, errors="replace") if charset else body
    except LookupError:  # an unknown charset name: let lxml sniff the bytes
        source = body
    try:
        root = lxml.html.document_fromstring(source)
    except (lxml.etree.ParserError, ValueError):
        return []
    blocks: list[str] = []
    current: list[str] = []

    def flush() -> None:
        text = _clean_block("".join(current))
        if text:
            blocks.append(text)
        current.clear()

    def walk(el: Any) -> None:
        tag = el.tag if isinstance(el.tag, str) else None
        if tag is None or tag.lower() in _SKIP_TAGS or el.get("hidden") is not None:
            return  # comments / processing instructions / invisible: skip content, not tail
        tag = tag.lower()
        if tag == "br":
            flush()
            return
        block = tag not in _INLINE_TAGS
        if block:
            flush()
        current.append(el.text or "")
        for child in el:
            walk(child)
            current.append(child.tail or "")
        if block:
            flush()

    walk(root)
    flush()
    return blocks


def terms_blocks(body: bytes, content_type: str | None = None) -> list[str]:
    """The visible text blocks of a terms page (see the module doc for the rules)."""
    if "text/plain" in (content_type or "").lower():
        text = body.decode(_charset(content_type) or "utf-8", errors="replace")
        return [b for b in (_clean_block(line) for line in text.splitlines()) if b]
    return _html_blocks(body, content_type)


def terms_text(body: bytes, content_type: str | None = None) -> str:
    """Readable form of the normalised terms text: one block per line (for diffs)."""
    return "\n".join(terms_blocks(body, content_type))


def terms_sha256(body: bytes, content_type: str | None = None) -> str:
    """SHA-256 of the normalised visible text; stable across cosmetic markup changes."""
    text = " ".join(terms_blocks(body, content_type))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------- TDMRep


class ProtocolFileError(ValueError):
    """A robots.txt or tdmrep.json that cannot be read as one."""


@dataclass(frozen=True)
class TdmSignal:
    """One machine-readable statement: rights reserved (1) or not (0), and its policy."""

    reserved: bool
    policy: str | None = None
    where: str = ""  # "meta", "header", or the tdmrep.json location pattern


@dataclass(frozen=True)
class TdmRule:
    location: str
    reserved: bool
    policy: str | None = None


@dataclass(frozen=True)
class TdmDecision:
    reserved: bool
    by: str | None = None  # "meta" | "header" | "file" | None when nobody says anything
    detail: str = ""
    policy: str | None = None


def _reservation_value(value: Any) -> bool:
    """0 means not reserved; anything else a site sends (1, "1", garbage) counts as reserved.

    Reading an unknown value as a reservation is the safe side of a legal opt-out.
    """
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() not in ("0", "false", "no")


def parse_tdmrep(text: str | bytes) -> list[TdmRule]:
    """Parse /.well-known/tdmrep.json: a JSON array of {location, tdm-reservation, tdm-policy}."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as err:
            raise ProtocolFileError(f"tdmrep.json is not UTF-8 ({err})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ProtocolFileError(f"tdmrep.json is not JSON: {err.msg} at line {err.lineno}"
                                ) from None
    if not isinstance(data, list):
        raise ProtocolFileError("tdmrep.json must be a JSON array of rules")
    rules: list[TdmRule] = []
    for number, item in enumerate(data, start=1):
        if not isinstance(item, dict):
            raise ProtocolFileError(f"tdmrep.json rule {number} is not an object")
        location = item.get("location")
        if not isinstance(location, str) or not location.startswith(("/", "*")):
            raise ProtocolFileError(f"tdmrep.json rule {number} has no location path")
        if "tdm-reservation" not in item:
            raise ProtocolFileError(f"tdmrep.json rule {number} has no tdm-reservation")
        value = item["tdm-reservation"]
        if value not in (0, 1, "0", "1") or isinstance(value, bool):
            raise ProtocolFileError(
                f"tdmrep.json rule {number}: tdm-reservation must be 0 or 1, not {value!r}")
        policy = item.get("tdm-policy")
        rules.append(TdmRule(location, str(value) == "1",
                             policy if isinstance(policy, str) else None))
    return rules


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """robots.txt-style path pattern: '*' any run of characters, final '$' ends the path."""
    anchored = pattern.endswith("$")
    body = pattern[:-1] if anchored else pattern
    regex = ".*".join(re.escape(part) for part in body.split("*"))
    return re.compile(regex + ("$" if anchored else ""))


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def tdmrep_rule_for(rules: Iterable[TdmRule], path: str) -> TdmRule | None:
    """The first rule whose location matches `path` (TDMRep: first matching rule wins)."""
    for rule in rules:
        if _pattern_regex(rule.location).match(path):
            return rule
    return None


def header_tdm(headers: Mapping[str, Any]) -> TdmSignal | None:
    """The `tdm-reservation` response header (and `tdm-policy`), if present."""
    lowered = {str(k).lower(): v for k, v in headers.items()}
    value = lowered.get("tdm-reservation")
    if value is None:
        return None
    policy = lowered.get("tdm-policy")
    return TdmSignal(_reservation_value(_first_text(value)),
                     _first_text(policy) if policy is not None else None, "header")


def _first_text(value: Any) -> str:
    if isinstance(value, list | tuple):
        value = value[0] if value else ""
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    return str(value)


_META_TAG = re.compile(r"<meta\b([^>]*)>", re.IGNORECASE)
_ATTR = re.compile(r"""([\w:-]+)\s*=\s*("([^"]*)"|'([^']*)'|([^\s"'>]+))""")


def _meta_attrs(tag_body: str) -> dict[str, str]:
    return {m.group(1).lower(): (m.group(3) or m.group(4) or m.group(5) or "")
            for m in _ATTR.finditer(tag_body)}


def meta_tdm(html: str | bytes) -> TdmSignal | None:
    """`<meta name="tdm-reservation" content="1">` (and tdm-policy) in an HTML page.

    A tag scan rather than a DOM: it also sees a tag in a comment, which can only make the
    gate stricter.
    """
    if isinstance(html, bytes):
        html = html.decode("utf-8", errors="replace")
    reserved: bool | None = None
    policy: str | None = None
    for match in _META_TAG.finditer(html):
        attrs = _meta_attrs(match.group(1))
        name = attrs.get("name", "").strip().lower()
        if name == "tdm-reservation" and reserved is None:
            reserved = _reservation_value(attrs.get("content", "1"))
        elif name == "tdm-policy" and policy is None:
            policy = attrs.get("content")
    if reserved is None:
        return None
    return TdmSignal(reserved, policy, "meta")


def decide_tdm(meta: TdmSignal | None, header: TdmSignal | None,
               rule: TdmRule | None) -> TdmDecision:
    """TDMRep precedence: the page's meta overrides the header, which overrides the file."""
    if meta is not None:
        return TdmDecision(meta.reserved, "meta", '<meta name="tdm-reservation">', meta.policy)
    if header is not None:
        return TdmDecision(header.reserved, "header", "tdm-reservation header", header.policy)
    if rule is not None:
        return TdmDecision(rule.reserved, "file", f"tdmrep.json rule {rule.location!r}",
                           rule.policy)
    return TdmDecision(False)


def looks_like_html(content_type: str | None, body: bytes) -> bool:
    if content_type:
        return "html" in content_type.lower()
    return body.lstrip()[:1] == b"<"


# --------------------------------------------------------------------------- robots.txt

_ROBOTS_LINE = re.compile(r"^\s*[A-Za-z][A-Za-z_-]*\s*:")


@dataclass(frozen=True)
class RobotsPolicy:
    """robots.txt for one host, with the RFC 9309 meaning of how it was (not) fetched.

    `problem` is None when the crawl may go on: "unreachable", "server_error" and
    "unparsable" all mean complete disallow (fail closed).
    """

    url: str
    status: int | None
    mode: str  # "rules" | "allow_all" | "disallow_all"
    reason: str
    problem: str | None = None
    text: str = ""
    ignored_lines: tuple[int, ...] = ()
    _parser: Any = field(default=None, repr=False, compare=False)

    def allowed(self, url: str, user_agent: str) -> bool:
        if self.mode == "allow_all":
            return True
        if self.mode == "disallow_all":
            return False
        return bool(self._parser.can_fetch(url, user_agent))

    def crawl_delay(self, user_agent: str) -> float | None:
        if self.mode != "rules":
            return None
        delay = self._parser.crawl_delay(user_agent)
        return float(delay) if delay is not None else None


def parse_robots(body: bytes) -> tuple[str, tuple[int, ...]]:
    """Decode and sanity-check a robots.txt body; return its text and ignored line numbers.

    RFC 9309 asks parsers to skip lines they cannot read, and so do we; but a body that is
    clearly not a robots.txt (binary, an HTML page, or not one readable line) is refused:
    obeying a file nobody can read would mean guessing.
    """
    if b"\x00" in body:
        raise ProtocolFileError("robots.txt is binary, not text")
    text = body.decode("utf-8-sig", errors="replace")
    head = text.lstrip()[:200].lower()
    if head.startswith(("<!doctype", "<html", "<?xml", "<head", "<body")):
        raise ProtocolFileError("robots.txt is an HTML/XML page, not a robots.txt file")
    ignored: list[int] = []
    valid = 0
    for number, line in enumerate(text.splitlines(), start=1):
        content = line.split("#", 1)[0].strip()
        if not content:
            continue
        if _ROBOTS_LINE.match(content):
            valid += 1
        else:
            ignored.append(number)
    if ignored and not valid:
        raise ProtocolFileError(f"robots.txt has no readable line (line {ignored[0]}: "
                                f"{text.splitlines()[ignored[0] - 1][:60]!r})")
    return text, tuple(ignored)


def robots_policy(url: str, status: int | None, body: bytes | None,
                  error: str | None = None) -> RobotsPolicy:
    """RFC 9309 §2.3.1: 2xx parse; 4xx no restriction; 5xx or unreachable complete disallow.

    429 Too Many Requests is treated like a 5xx (the server is unavailable, not saying
    "there is no file"); a 3xx left unresolved after the redirects the fetcher follows is
    "unavailable", which RFC 9309 §2.3.1.2 treats like a 4xx.
    """
    if status is None:
        return RobotsPolicy(url, None, "disallow_all", f"unreachable ({error or 'no response'})",
                            "unreachable")
    if 200 <= status < 300:
        try:
            text, ignored = parse_robots(body or b"")
        except ProtocolFileError as err:
            return RobotsPolicy(url, status, "disallow_all", str(err), "unparsable")
        return RobotsPolicy(url, status, "rules", f"HTTP {status}", None, text, ignored,
                            Protego.parse(text))
    if status == 429 or status >= 500:
        return RobotsPolicy(url, status, "disallow_all",
                            f"HTTP {status}: server error, assume complete disallow",
                            "server_error")
    if 300 <= status < 500:
        return RobotsPolicy(url, status, "allow_all", f"HTTP {status}: no robots.txt, "
                            "no restriction")
    return RobotsPolicy(url, status, "disallow_all", f"HTTP {status}", "server_error")


# --------------------------------------------------------------------------- fetching


@dataclass(frozen=True)
class Fetched:
    url: str
    status: int | None
    headers: dict[str, str]
    body: bytes
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def content_type(self) -> str | None:
        return self.headers.get("content-type")

    def describe(self) -> str:
        return f"HTTP {self.status}" if self.status is not None else f"unreachable ({self.error})"


def fetch(url: str, *, user_agent: str, proxy: str | None = None,
          timeout: float = DEFAULT_TIMEOUT_S) -> Fetched:
    """GET one URL. Never raises for HTTP or network trouble: `status` None means no answer.

    With `proxy` (e.g. the demo's forward proxy) every request goes through it; without,
    urllib's usual environment proxy settings apply, as they do for Scrapy.
    """
    handlers: list[urllib.request.BaseHandler] = []
    if proxy:
        handlers.append(urllib.request.ProxyHandler({"http": proxy, "https": proxy}))
    opener = urllib.request.build_opener(*handlers)
    request = urllib.request.Request(url, headers={"User-Agent": user_agent,
                                                   "Accept-Encoding": "identity"})
    try:
        with opener.open(request, timeout=timeout) as response:
            return Fetched(url, response.status, _headers(response.headers),
                           response.read(MAX_BODY_BYTES))
    except urllib.error.HTTPError as err:
        try:
            body = err.read(MAX_BODY_BYTES)
        except OSError:
            body = b""
        return Fetched(url, err.code, _headers(err.headers), body)
    except (urllib.error.URLError, OSError, ValueError) as err:
        reason = getattr(err, "reason", err)
        return Fetched(url, None, {}, b"", str(reason))


def _headers(headers: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()} if headers else {}


def origin_url(url: str, path: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


# --------------------------------------------------------------------------- preflight


class CrawlRefused(UserError):
    """The gate refuses to start a crawl; `reason` is a short code for the audit log."""

    def __init__(self, reason: str, message: str, *, source: SourceConfig | None = None,
                 fix: str | None = None) -> None:
        self.reason = reason
        name = source.name if source else "?"
        super().__init__(f"crawl of {name!r} refused: {message}",
                         path=source.path if source else None,
                         line=source.line if source else None, fix=fix)


@dataclass
class HostCheck:
    host: str
    origin: str
    robots: RobotsPolicy
    tdmrep_status: int | None = None
    tdmrep_rules: list[TdmRule] | None = None
    tdmrep_error: str | None = None


@dataclass
class StartPageCheck:
    url: str
    allowed_by_robots: bool
    status: int | None = None
    error: str | None = None
    decision: TdmDecision = field(default_factory=lambda: TdmDecision(False))


@dataclass
class Preflight:
    """Everything the gate learnt about a source before crawling it."""

    source: SourceConfig
    checked_at: str = ""
    terms: Fetched | None = None
    terms_sha256: str | None = None
    terms_text: str | None = None
    hosts: dict[str, HostCheck] = field(default_factory=dict)
    start_pages: list[StartPageCheck] = field(default_factory=list)

    @property
    def terms_changed(self) -> bool:
        return self.terms_sha256 is not None and self.terms_sha256 != self.source.terms_sha256

    def crawl_delays(self) -> dict[str, float]:
        ua = self.source.effective_user_agent
        return {h: d for h, c in self.hosts.items()
                if (d := c.robots.crawl_delay(ua)) is not None}


def refusal(pf: Preflight, *, require_approved: bool = True) -> CrawlRefused | None:
    """Why a crawl must not start given what `pf` found, or None. Pure: no I/O."""
    src = pf.source
    if require_approved and not src.approved:
        why = f" ({src.suspended_reason})" if src.status == "suspended" and \
            src.suspended_reason else ""
        return CrawlRefused("not_approved", f"the source is {src.status}{why}; only "
                            "approved sources are crawled", source=src,
                            fix=f"a legal reviewer runs `horeca sources approve {src.name} "
                                "--reviewer ... --basis ...`")
    if pf.terms is not None and not pf.terms.ok:
        return CrawlRefused("terms_unreachable", f"cannot read the terms page {src.terms_url} "
                            f"({pf.terms.describe()}), so cannot tell whether they changed",
                            source=src, fix="retry later, or check terms_url")
    if pf.terms_changed:
        return CrawlRefused("terms_changed", f"terms changed since review on {src.reviewed_on}"
                            f" (reviewed {(src.terms_sha256 or '')[:12]}, now "
                            f"{(pf.terms_sha256 or '')[:12]})", source=src,
                            fix=f"re-review and run `horeca sources approve {src.name}`")
    for host in pf.hosts.values():
        if host.robots.problem:
            return CrawlRefused(f"robots_{host.robots.problem}",
                                f"robots.txt of {host.host}: {host.robots.reason}; RFC 9309 "
                                "means nothing may be fetched", source=src,
                                fix="retry when the site's robots.txt is served again")
        if host.tdmrep_error:
            return CrawlRefused("tdmrep_unparsable", f"{host.origin}{TDMREP_PATH}: "
                                f"{host.tdmrep_error}", source=src,
                                fix="ask the site to fix its tdmrep.json, or suspend the source")
    for page in pf.start_pages:
        if page.decision.reserved:
            policy = f"; policy {page.decision.policy}" if page.decision.policy else ""
            return CrawlRefused("tdm_reserved", f"{page.url} reserves text-and-data-mining "
                                f"rights ({page.decision.detail}{policy}; DSM Directive "
                                "Art. 4(3))", source=src,
                                fix=f"obtain a licence, or suspend: `horeca sources suspend "
                                    f"{src.name} --reason ...`")
    if pf.start_pages and not any(p.allowed_by_robots for p in pf.start_pages):
        return CrawlRefused("robots_disallowed", "robots.txt disallows every start URL",
                            source=src, fix="check start_urls against the site's robots.txt")
    return None


def inspect_source(source: SourceConfig, *, proxy: str | None = None,
                   timeout: float = DEFAULT_TIMEOUT_S, stop_on_refusal: bool = False,
                   require_approved: bool = True) -> Preflight:
    """Fetch the terms page, then per host robots.txt and tdmrep.json, then the start pages.

    Nothing else is fetched from a host whose robots.txt fails closed. With
    `stop_on_refusal`, stops at the first finding that refuses the crawl.
    """
    ua = source.effective_user_agent
    pf = Preflight(source, checked_at=now_iso())

    def done() -> bool:
        return stop_on_refusal and refusal(pf, require_approved=require_approved) is not None

    if done():
        return pf
    if source.terms_url:
        pf.terms = fetch(source.terms_url, user_agent=ua, proxy=proxy, timeout=timeout)
        if pf.terms.ok:
            pf.terms_sha256 = terms_sha256(pf.terms.body, pf.terms.content_type)
            pf.terms_text = terms_text(pf.terms.body, pf.terms.content_type)
        if done():
            return pf
    for url in source.start_urls:
        host = (urlsplit(url).hostname or "").lower()
        if host in pf.hosts:
            continue
        robots_url = origin_url(url, ROBOTS_PATH)
        got = fetch(robots_url, user_agent=ua, proxy=proxy, timeout=timeout)
        check = HostCheck(host, origin_url(url, ""),
                          robots_policy(robots_url, got.status, got.body, got.error))
        pf.hosts[host] = check
        if check.robots.problem is None:
            _read_tdmrep(check, fetch(origin_url(url, TDMREP_PATH), user_agent=ua, proxy=proxy,
                                      timeout=timeout))
        if done():
            return pf
    for url in source.start_urls:
        host_check = pf.hosts[(urlsplit(url).hostname or "").lower()]
        allowed = host_check.robots.allowed(url, ua)
        page = StartPageCheck(url, allowed)
        pf.start_pages.append(page)
        if not allowed:
            continue
        got = fetch(url, user_agent=ua, proxy=proxy, timeout=timeout)
        page.status, page.error = got.status, got.error
        meta = meta_tdm(got.body) if looks_like_html(got.content_type, got.body) else None
        rule = tdmrep_rule_for(host_check.tdmrep_rules or (), path_of(url))
        page.decision = decide_tdm(meta, header_tdm(got.headers), rule)
        if done():
            return pf
    return pf


def _read_tdmrep(check: HostCheck, got: Fetched) -> None:
    check.tdmrep_status = got.status
    if got.ok:
        try:
            check.tdmrep_rules = parse_tdmrep(got.body)
        except ProtocolFileError as err:
            check.tdmrep_error = str(err)
    elif got.status is None or got.status >= 500:
        # A reservation we could not read may still exist: fail closed like robots.txt.
        check.tdmrep_error = f"cannot be fetched ({got.describe()})"


def preflight(source: SourceConfig, proxy: str | None = None, *,
              timeout: float = DEFAULT_TIMEOUT_S) -> Preflight:
    """Raise `CrawlRefused` unless the source may be crawled now; return what was found.

    A source that is not approved is refused before anything is fetched from it.
    """
    pf = inspect_source(source, proxy=proxy, timeout=timeout, stop_on_refusal=True)
    refused = refusal(pf)
    if refused is not None:
        raise refused
    return pf


def sync_source_row(db: sqlite_utils.Database, source: SourceConfig) -> None:
    """Mirror a source's review record into the `sources` table (for reports and joins)."""
    from horeca.store import upsert

    upsert(db, "sources", [{
        "name": source.name, "spider": source.spider, "status": source.status,
        "reviewer": source.reviewer,
        "reviewed_on": source.reviewed_on.isoformat() if source.reviewed_on else None,
        "terms_sha256": source.terms_sha256, "retention_days": source.retention_days,
        "updated_at": now_iso(),
    }], key="name")


def gate_crawl(db: sqlite_utils.Database, source: SourceConfig, actor: str | None,
               purpose: str | None, proxy: str | None = None, *,
               timeout: float = DEFAULT_TIMEOUT_S) -> Preflight:
    """The crawl runner's entry: preflight, and an audit entry for every refusal."""
    try:
        pf = preflight(source, proxy, timeout=timeout)
    except CrawlRefused as refused:
        with transaction(db):
            sync_source_row(db, source)
            audit.record(db, "crawl_refused", actor=actor, source=source.name,
                         target=", ".join(source.start_urls), rows=0, purpose=purpose,
                         details={"reason": refused.reason, "message": refused.bare_message})
        raise
    with transaction(db):
        sync_source_row(db, source)
    return pf


def host_allowed(source: SourceConfig, url: str) -> bool:
    return host_in_domains(urlsplit(url).hostname, source.allowed_domains)
