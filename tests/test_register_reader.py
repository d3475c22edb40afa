"""The streaming reader: its fast path for KBO-shaped files agrees with the csv module,
key filters select exactly the wanted entities, and format problems are named."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from horeca.errors import UserError
from horeca.register.issues import RowIssues
from horeca.register.kbo_format import detect_kind, kbo_date, write_extract
from horeca.register.reader import (
    KeyFilter,
    Source,
    entity_digits,
    fast_key,
    iter_rows,
    read_layout,
)

COLUMNS = ("EntityNumber", "Language", "TypeOfDenomination", "Denomination")


def _quoted_file(rows: list[list[str]], line_end: str = "\r\n") -> bytes:
    out = [",".join(f'"{c}"' for c in COLUMNS)]
    for row in rows:
        out.append(",".join('"' + v.replace('"', '""') + '"' for v in row))
    return (line_end.join(out) + line_end).encode("utf-8")


def _read(data: bytes, *, keys: KeyFilter | None = None, delimiter: str = ",",
          force_csv: bool = False, issues: RowIssues | None = None) -> list[tuple]:
    stream = io.BufferedReader(io.BytesIO(data))  # type: ignore[arg-type]
    layout = read_layout(stream, "t.csv", COLUMNS, encoding="utf-8", delimiter=delimiter)
    if force_csv:
        layout.fast = False
    return list(iter_rows(stream, layout, "t.csv", COLUMNS, encoding="utf-8",
                          delimiter=delimiter, issues=issues or RowIssues(), keys=keys))


entity_numbers = st.one_of(
    st.integers(0, 10**9 - 1).map(lambda n: f"0{n:09d}"),
    st.integers(2 * 10**9, 8 * 10**9).map(str),
).map(lambda d: d if len(d) == 10 else d.zfill(10))


def dotted(digits: str) -> str:
    if digits[0] in "01":
        return f"{digits[:4]}.{digits[4:7]}.{digits[7:]}"
    return f"{digits[0]}.{digits[1:4]}.{digits[4:7]}.{digits[7:]}"


values = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                 max_size=12)


@settings(max_examples=80, deadline=None)
@given(rows=st.lists(st.tuples(entity_numbers, values, values, values), max_size=8),
       crlf=st.booleans())
def test_fast_path_reads_what_the_csv_module_reads(rows, crlf):
    data = _quoted_file([[dotted(e), a, b, c] for e, a, b, c in rows],
                        "\r\n" if crlf else "\n")
    fast = [v for _, v in _read(data)]
    slow = [v for _, v in _read(data, force_csv=True)]
    expected = [tuple(r) for r in csv.reader(io.StringIO(data.decode("utf-8"), newline=""))][1:]
    assert fast == slow == [e for e in expected if e != ()]


@settings(max_examples=80, deadline=None)
@given(rows=st.lists(st.tuples(entity_numbers, values), min_size=1, max_size=10),
       pick=st.sets(st.integers(0, 9), max_size=5))
def test_key_filter_keeps_exactly_the_wanted_entities(rows, pick):
    data = _quoted_file([[dotted(e), "1", "001", name] for e, name in rows])
    wanted = {rows[i][0] for i in pick if i < len(rows)}
    keys = KeyFilter.of(wanted)
    fast = [(entity_digits(v[0]), v[3]) for _, v in _read(data, keys=keys)]
    slow = [(entity_digits(v[0]), v[3]) for _, v in _read(data, keys=keys, force_csv=True)]
    assert fast == slow == [(e, name) for e, name in rows if e in wanted]


def test_fast_key_is_the_13_bytes_after_the_opening_quote():
    for digits in ("0201310929", "2123456789", "9036638774"):
        line = f'"{dotted(digits)}","x"'.encode()
        assert line[1:14] == fast_key(digits)


def test_line_numbers_count_continuation_lines():
    data = _quoted_file([["0200.000.001", "1", "001", "two\nlines"],
                         ["0200.000.002", "1", "001", "short", "extra"]])
    issues = RowIssues()
    rows = _read(data, issues=issues)
    assert [line for line, _ in rows] == [2]
    assert issues.examples["wrong_column_count"] == [
        "t.csv:4: 5 columns where the header has 4"]


def test_utf8_bom_in_the_header_is_ignored():
    data = b"\xef\xbb\xbf" + _quoted_file([["0200.000.001", "1", "001", "A"]])
    assert [v for _, v in _read(data)] == [("0200.000.001", "1", "001", "A")]


def test_empty_file_is_named():
    with pytest.raises(UserError, match="empty"):
        _read(b"")


def test_utf16_file_is_recognised_as_such():
    data = _quoted_file([["0200.000.001", "1", "001", "A"]]).decode().encode("utf-16")
    with pytest.raises(UserError, match="UTF-16"):
        _read(data)


def test_tab_delimited_file_suggests_the_option():
    data = "\t".join(COLUMNS).encode() + b"\n0200.000.001\t1\t001\tA\n"
    with pytest.raises(UserError, match=r"--delimiter '\\t'"):
        _read(data)
    assert [v for _, v in _read(data, delimiter="\t")] == [("0200.000.001", "1", "001", "A")]


def test_unknown_encoding_is_a_user_error(tmp_path: Path):
    stream = io.BufferedReader(io.BytesIO(_quoted_file([])))  # type: ignore[arg-type]
    with pytest.raises(UserError, match="unknown encoding"):
        read_layout(stream, "t.csv", COLUMNS, encoding="klingon", delimiter=",")


def test_format_is_recognised_from_the_files_inside(tmp_path: Path):
    full = write_extract(tmp_path / "full", {"enterprise": [], "activity": []})
    update = write_extract(tmp_path / "upd", {"enterprise_insert": [], "enterprise_delete": []},
                           kind="update")
    other = tmp_path / "other"
    other.mkdir()
    (other / "list.csv").write_text("a,b\n")
    assert [detect_kind(Source(p)) for p in (full, update, other)] == ["full", "update", None]


def test_missing_path_is_named(tmp_path: Path):
    with pytest.raises(UserError, match="no such file"):
        Source(tmp_path / "nope.zip")


@pytest.mark.parametrize("text, iso", [("07-03-2025", "2025-03-07"), ("1-2-1999", "1999-02-01"),
                                       ("", None), ("2025-03-07", None), ("31-13-2020", None)])
def test_kbo_dates(text, iso):
    assert kbo_date(text) == iso
