"""Public suffixes ("be", "co.uk", "blogspot.com") from the Public Suffix List that the
tldextract package bundles, read without importing tldextract.

tldextract takes about a quarter of a second to start (it imports requests and builds
two tries of the whole list), paid by every command that compares websites. This module
reads the same snapshot file and walks the same trie, public and private suffixes
together, label by label from the right, with the same wildcard ("*.ck") and exception
("!www.ck") handling as tldextract's `suffix_index`: tests/test_normalize_web.py checks
the two agree on hosts made from every rule of the list.
"""

from __future__ import annotations

import importlib.util
import re
from functools import lru_cache
from pathlib import Path

SNAPSHOT_NAME = ".tld_set_snapshot"
_RULE = re.compile(r"^(?P<suffix>[.*!]*\w[\S]*)", re.UNICODE | re.MULTILINE)  # tldextract's
_END = "."  # the key marking "a suffix ends here" in a trie node (no label holds a dot)


def snapshot_path() -> Path:
    """The Public Suffix List file inside the installed tldextract package."""
    spec = importlib.util.find_spec("tldextract")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("tldextract is not installed: it ships the Public Suffix "
                                  "List horeca reads (fix: pip install tldextract)")
    return Path(next(iter(spec.submodule_search_locations))) / SNAPSHOT_NAME


def parse_rules(text: str) -> list[str]:
    """Every rule of a Public Suffix List text, public and private ones alike."""
    return [m.group("suffix") for m in _RULE.finditer(text)]


def build_trie(rules: list[str]) -> dict[str, dict]:
    """Nested dicts by label, right to left; `_END` in a node: a suffix ends there."""
    root: dict[str, dict] = {}
    for rule in rules:
        node = root
        for label in reversed(rule.split(".")):
            node = node.setdefault(label, {})
        node[_END] = {}
    return root


@lru_cache(maxsize=1)
def _trie() -> dict[str, dict]:
    return build_trie(parse_rules(snapshot_path().read_text(encoding="utf-8")))


def _decoded(label: str) -> str:
    lowered = label.lower()
    if lowered.startswith("xn--"):
        try:
            import idna  # only for punycode labels, as tldextract does

            return str(idna.decode(lowered))
        except (UnicodeError, IndexError, ImportError):
            pass
    return lowered


def suffix_start(labels: list[str], trie: dict[str, dict] | None = None) -> int | None:
    """The index of the first label of the public suffix of a host split on dots, or None
    when no rule matches (tldextract's `suffix_index`, private domains included)."""
    node = _trie() if trie is None else trie
    start = at = len(labels)
    for label in reversed(labels):
        key = _decoded(label)
        child = node.get(key)
        if child is not None:
            at -= 1
            node = child
            if _END in node:
                start = at
            continue
        if "*" in node:
            return at if "!" + key in node else at - 1
        break
    return None if start == len(labels) else start


def split_host(host: str) -> tuple[str, str]:
    """(domain label, public suffix) of a host name; ("", "") when the list knows no
    suffix of it, ("", suffix) when the host is itself a public suffix."""
    host = host.strip().rstrip(".\u3002\uff0e\uff61")  # "resto.be." is "resto.be"
    labels = host.replace("\u3002", ".").replace("\uff0e", ".").replace("\uff61", ".") \
        .split(".")
    start = suffix_start(labels)
    if start is None:
        return "", ""
    return (labels[start - 1] if start > 0 else ""), ".".join(labels[start:])
