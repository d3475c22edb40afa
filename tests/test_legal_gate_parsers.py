"""Pure parsers of the gate: terms hash, TDMRep (file, header, meta), robots.txt statuses."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from horeca.legal_gate.checks import (
    ProtocolFileError,
    TdmRule,
    TdmSignal,
    decide_tdm,
    header_tdm,
    meta_tdm,
    parse_robots,
    parse_tdmrep,
    robots_policy,
    tdmrep_rule_for,
    terms_sha256,
    terms_text,
)

UA = "horeca/0.1 (+mailto:dpo@inspection.example)"
TERMS = """<!doctype html><html><head><title>Terms</title><style>p{color:red}</style>
<script>var tracking = 1;</script></head>
<body><h1>Terms of use</h1>
<p>You may <b>read</b> this site. Automated collection is allowed for public authorities.</p>
<ul><li>Rule one.</li><li>Rule two.</li></ul>
<!-- internal note --><p hidden>draft clause</p>
</body></html>"""


def _hash(page: str) -> str:
    return terms_sha256(page.encode(), "text/html; charset=utf-8")


# --------------------------------------------------------------------------- terms hash


def test_terms_text_is_the_visible_text_by_block() -> None:
    assert terms_text(TERMS.encode(), "text/html") == (
        "Terms of use\nYou may read this site. Automated collection is allowed for public "
        "authorities.\nRule one.\nRule two.")


@pytest.mark.parametrize("cosmetic", [
    TERMS.replace("<p>", '<p class="lead" style="margin:0">'),
    TERMS.replace("<b>read</b>", "<strong>read</strong>"),
    TERMS.replace("<b>read</b>", "read"),
    TERMS.replace("<p>", "<div>").replace("</p>", "</div>"),
    TERMS.replace("\n", "\n\n      "),
    TERMS.replace("<title>Terms</title>", "<title>Terms and conditions 2026</title>"),
    TERMS.replace("var tracking = 1;", "var tracking = 2;"),
    TERMS.replace("<!-- internal note -->", "<!-- another note -->"),
    TERMS.replace("You may", "You&nbsp;may"),
    TERMS.replace("<ul>", "<ul>\n<!-- x -->"),
])
def test_cosmetic_markup_changes_keep_the_hash(cosmetic: str) -> None:
    assert _hash(cosmetic) == _hash(TERMS)


@pytest.mark.parametrize("wording", [
    TERMS.replace("is allowed", "is forbidden"),
    TERMS.replace("Rule two.", "Rule two!"),
    TERMS.replace("Rule one.", "Rule one. Rule three."),
    TERMS.replace("<li>Rule two.</li>", ""),
    TERMS.replace("You may", "you may"),
    TERMS.replace("<p hidden>draft clause</p>", "<p>draft clause</p>"),
])
def test_any_wording_change_changes_the_hash(wording: str) -> None:
    assert _hash(wording) != _hash(TERMS)


def test_plain_text_terms_hash_by_line() -> None:
    body = b"Terms of use\n\n  You may read this site.  \n"
    assert terms_text(body, "text/plain") == "Terms of use\nYou may read this site."
    assert terms_sha256(body, "text/plain") == terms_sha256(
        b"Terms   of use\nYou may read this site.", "text/plain")


_WORDS = st.lists(st.text(alphabet="abcdefghijklmnopqrstuvwxyzàéè.,;", min_size=1,
                          max_size=8), min_size=1, max_size=12)


@given(words=_WORDS, spaces=st.lists(st.sampled_from([" ", "  ", "\n", "\t", " \n "]),
                                     min_size=12, max_size=12))
def test_whitespace_between_words_never_changes_the_hash(words, spaces) -> None:
    tight = "<p>" + " ".join(words) + "</p>"
    loose = "<p>" + "".join(w + spaces[i] for i, w in enumerate(words)) + "</p>"
    assert _hash(tight) == _hash(loose)


@given(words=_WORDS, index=st.integers(min_value=0), extra=st.sampled_from("xyz"))
def test_changing_any_word_changes_the_hash(words, index, extra) -> None:
    changed = list(words)
    changed[index % len(words)] += extra
    assert _hash("<p>" + " ".join(words) + "</p>") != _hash("<p>" + " ".join(changed) + "</p>")


def test_empty_or_broken_pages_hash_without_error() -> None:
    assert terms_text(b"", "text/html") == ""
    assert terms_text(b"<p>unclosed <b>tags", "text/html") == "unclosed tags"


def test_declared_charset_is_used() -> None:
    body = "<p>Conditions générales</p>".encode("latin-1")
    assert terms_text(body, "text/html; charset=iso-8859-1") == "Conditions générales"


# --------------------------------------------------------------------------- TDMRep


def test_tdmrep_file_first_matching_rule_wins() -> None:
    rules = parse_tdmrep(json.dumps([
        {"location": "/reviews/*", "tdm-reservation": 1, "tdm-policy": "https://x/p.json"},
        {"location": "/*", "tdm-reservation": 0},
        {"location": "/reviews/open/*", "tdm-reservation": 0},
    ]))
    assert tdmrep_rule_for(rules, "/reviews/open/1").reserved is True
    assert tdmrep_rule_for(rules, "/reviews/open/1").policy == "https://x/p.json"
    assert tdmrep_rule_for(rules, "/restaurants/1").reserved is False


def test_tdmrep_wildcards_and_end_anchor() -> None:
    rules = [TdmRule("/*.pdf$", True), TdmRule("/brussels/*/menu", True)]
    assert tdmrep_rule_for(rules, "/docs/a.pdf") is not None
    assert tdmrep_rule_for(rules, "/docs/a.pdf?x=1") is None
    assert tdmrep_rule_for(rules, "/brussels/ixelles/menu") is not None
    assert tdmrep_rule_for(rules, "/antwerp/menu") is None


@pytest.mark.parametrize("bad, problem", [
    ("{not json", "not JSON"),
    ('{"location": "/"}', "array"),
    ('[{"tdm-reservation": 1}]', "location"),
    ('[{"location": "/"}]', "no tdm-reservation"),
    ('[{"location": "/", "tdm-reservation": 2}]', "0 or 1"),
    ('["/"]', "not an object"),
])
def test_unparsable_tdmrep_is_an_error(bad: str, problem: str) -> None:
    with pytest.raises(ProtocolFileError, match=problem):
        parse_tdmrep(bad)


def test_tdm_header_values() -> None:
    assert header_tdm({"TDM-Reservation": "1", "tdm-policy": "https://x/p"}) == \
        TdmSignal(True, "https://x/p", "header")
    assert header_tdm({"tdm-reservation": "0"}).reserved is False
    assert header_tdm({"tdm-reservation": "yes please"}).reserved is True  # unknown: reserved
    assert header_tdm({"content-type": "text/html"}) is None


def test_tdm_meta_values() -> None:
    page = '<html><head><META NAME="tdm-reservation" CONTENT="1"><meta name="tdm-policy" ' \
           "content='https://x/p'></head></html>"
    assert meta_tdm(page) == TdmSignal(True, "https://x/p", "meta")
    assert meta_tdm('<meta content="0" name="tdm-reservation">').reserved is False
    assert meta_tdm('<meta name="description" content="1">') is None


def test_tdm_precedence_meta_over_header_over_file() -> None:
    file_yes, head_no, meta_yes = TdmRule("/*", True), TdmSignal(False), TdmSignal(True)
    assert decide_tdm(None, None, file_yes).by == "file"
    assert decide_tdm(None, head_no, file_yes).reserved is False
    assert decide_tdm(meta_yes, head_no, None).reserved is True
    assert decide_tdm(TdmSignal(False), TdmSignal(True), file_yes).reserved is False
    assert decide_tdm(None, None, None).reserved is False


# --------------------------------------------------------------------------- robots.txt


def test_robots_2xx_rules_and_crawl_delay() -> None:
    body = b"User-agent: *\nDisallow: /private/\nCrawl-delay: 2.5\n"
    policy = robots_policy("http://a.example/robots.txt", 200, body)
    assert policy.problem is None
    assert policy.allowed("http://a.example/ok", UA)
    assert not policy.allowed("http://a.example/private/x", UA)
    assert policy.crawl_delay(UA) == 2.5


def test_robots_group_for_our_product_token_applies() -> None:
    body = b"User-agent: horeca\nDisallow: /\n\nUser-agent: *\nAllow: /\n"
    policy = robots_policy("u", 200, body)
    assert not policy.allowed("http://a.example/x", UA)
    assert policy.allowed("http://a.example/x", "otherbot/1.0")


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410])
def test_robots_4xx_means_no_restriction(status: int) -> None:
    policy = robots_policy("u", status, b"")
    assert policy.problem is None and policy.allowed("http://a.example/any", UA)


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_robots_5xx_and_429_mean_complete_disallow(status: int) -> None:
    policy = robots_policy("u", status, b"User-agent: *\nAllow: /\n")
    assert policy.problem == "server_error"
    assert not policy.allowed("http://a.example/", UA)


def test_robots_unreachable_means_complete_disallow() -> None:
    policy = robots_policy("u", None, None, "connection refused")
    assert policy.problem == "unreachable" and not policy.allowed("http://a.example/", UA)


@pytest.mark.parametrize("body", [b"<!DOCTYPE html><html>oops</html>", b"\x00\x01\x02",
                                  b"this is not\na robots file\n"])
def test_unparsable_robots_fails_closed(body: bytes) -> None:
    with pytest.raises(ProtocolFileError):
        parse_robots(body)
    policy = robots_policy("u", 200, body)
    assert policy.problem == "unparsable" and not policy.allowed("http://a.example/", UA)


def test_robots_with_some_unreadable_lines_is_read_and_reports_them() -> None:
    policy = robots_policy("u", 200, b"User-agent: *\nthis line is junk\nDisallow: /x\n")
    assert policy.problem is None and policy.ignored_lines == (2,)
    assert not policy.allowed("http://a.example/x", UA)


def test_empty_robots_allows_everything() -> None:
    policy = robots_policy("u", 200, b"")
    assert policy.problem is None and policy.allowed("http://a.example/x", UA)
