"""Streaming CSV reading for registers: folders and zips, header checks, fast key filters.

A national KBO extract has 36 M activity rows. Most of them belong to entities outside the
region being imported, so the reader looks at the first field of each raw line (bytes, no
decoding) and only decodes and splits the lines whose entity is wanted. With KBO's layout
(every value double-quoted, entity numbers `0xxx.xxx.xxx` or `2.xxx.xxx.xxx`) the 13
bytes after the opening quote identify the entity exactly, which makes the filter a
single slice and set lookup per line. Files in any other shape (another delimiter, values
not quoted) go through the `csv` module instead: slower, same results.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import BinaryIO

from horeca.errors import UserError
from horeca.register.issues import RowIssues

READ_BUFFER = 1 << 20
SNIFF_BYTES = 1 << 16
OTHER_DELIMITERS = (",", ";", "\t", "|")
ENCODING_FIX = ("pass --encoding matching how the file was saved "
                "(e.g. --encoding latin-1 or --encoding cp1252)")


def entity_digits(number: str) -> str:
    """'0201.310.929' -> '0201310929'; the staging tables key on digits only."""
    return number.replace(".", "").replace(" ", "")


def fast_key(digits: str) -> bytes:
    """The 13 bytes that follow the opening quote of a KBO line for this entity.

    Enterprise numbers print as `0201.310.929` (12 characters), so their 13th byte is the
    closing quote; unit and branch numbers print as `2.123.456.789` (13 characters).
    """
    if len(digits) != 10:
        return b""
    if digits[0] in "01":
        return f'{digits[:4]}.{digits[4:7]}.{digits[7:]}"'.encode()
    return f"{digits[0]}.{digits[1:4]}.{digits[4:7]}.{digits[7:]}".encode()


@dataclass(frozen=True)
class KeyFilter:
    """Entities to keep, in the two shapes the two reading paths need."""

    digits: frozenset[str]
    fast: frozenset[bytes]

    @classmethod
    def of(cls, numbers: Iterable[str]) -> KeyFilter:
        """From entity numbers written either way ('0201.310.929' or '0201310929')."""
        wanted = frozenset(entity_digits(n) for n in numbers)
        return cls(wanted, frozenset(fast_key(d) for d in wanted))

    def __len__(self) -> int:
        return len(self.digits)


class _CountingReader(io.RawIOBase):
    """Reports bytes read to a progress callback (once per buffer fill, not per line)."""

    def __init__(self, inner: BinaryIO, on_bytes: Callable[[int], None]) -> None:
        self._inner = inner
        self._on_bytes = on_bytes

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        n = self._inner.readinto(buffer)  # type: ignore[attr-defined]
        if n:
            self._on_bytes(n)
        return n or 0

    def close(self) -> None:
        self._inner.close()
        super().close()


class Source:
    """A folder or a zip of CSV files; members are found by base name, case-insensitively."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._zip: zipfile.ZipFile | None = None
        self._members: dict[str, str] = {}
        self._sizes: dict[str, int] = {}
        if not self.path.exists():
            raise UserError("no such file or folder", path=self.path,
                            fix="check the path of the register extract")
        if self.path.is_dir():
            for child in sorted(self.path.iterdir()):
                if child.is_file():
                    self._members[child.name.lower()] = str(child)
                    self._sizes[child.name.lower()] = child.stat().st_size
        elif zipfile.is_zipfile(self.path):
            try:
                self._zip = zipfile.ZipFile(self.path)
            except (zipfile.BadZipFile, OSError) as err:
                raise UserError(f"cannot open the zip: {err}", path=self.path,
                                fix="download the extract again") from None
            for info in self._zip.infolist():
                if not info.is_dir():
                    base = info.filename.rsplit("/", 1)[-1].lower()
                    self._members.setdefault(base, info.filename)
                    self._sizes.setdefault(base, info.file_size)
        else:
            self._members[self.path.name.lower()] = str(self.path)
            self._sizes[self.path.name.lower()] = self.path.stat().st_size

    @property
    def is_single_file(self) -> bool:
        return self._zip is None and self.path.is_file()

    def names(self) -> list[str]:
        return sorted(self._members)

    def has(self, name: str) -> bool:
        return name.lower() in self._members

    def size(self, name: str) -> int:
        return self._sizes[name.lower()]

    def label(self, name: str) -> str:
        """How to name a member in messages: `extract.zip:activity.csv` or its path."""
        if self._zip is not None:
            return f"{self.path}:{self._members[name.lower()]}"
        return self._members[name.lower()]

    def open(self, name: str, on_bytes: Callable[[int], None] | None = None) -> io.BufferedReader:
        key = name.lower()
        try:
            if self._zip is not None:
                inner: BinaryIO = self._zip.open(self._members[key])  # type: ignore[assignment]
            else:
                inner = open(self._members[key], "rb", buffering=0)  # noqa: SIM115
        except (OSError, zipfile.BadZipFile, KeyError) as err:
            raise UserError(f"cannot read: {err}", path=self.label(name),
                            fix="check the file is complete and readable") from None
        raw = _CountingReader(inner, on_bytes) if on_bytes else inner
        return io.BufferedReader(raw, buffer_size=READ_BUFFER)  # type: ignore[arg-type]

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()


@dataclass
class CsvLayout:
    """How one file is written, learnt from its header."""

    header: list[str]
    columns: dict[str, int]   # header name -> position
    fast: bool                # KBO shape: comma separated, every value quoted


def _split_header(text: str, delimiter: str) -> list[str]:
    row = next(csv.reader([text], delimiter=delimiter), [])
    return [cell.strip().lstrip("\ufeff").strip() for cell in row]


def _header_error(label: str, text: str, wanted: tuple[str, ...], delimiter: str,
                  expected_header: tuple[str, ...] | None) -> UserError:
    for other in OTHER_DELIMITERS:
        if other != delimiter and set(wanted) <= set(_split_header(text, other)):
            shown = {"\t": "\\t"}.get(other, other)
            return UserError(
                f"the file is {shown!r}-delimited, not {delimiter!r}", path=label, line=1,
                fix=f"pass --delimiter '{shown}'")
    found = _split_header(text, delimiter)
    missing = [c for c in wanted if c not in found]
    expected = ",".join(f'"{c}"' for c in (expected_header or wanted))
    return UserError(
        f"unexpected header: missing column(s) {', '.join(missing)}; found "
        f"{','.join(found)[:200]}", path=label, line=1, fix=f"the header must be {expected}")


def _decode_or_fail(data: bytes, encoding: str, label: str, line: int) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        hint = ""
        if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
            hint = " (it looks like UTF-16)"
        raise UserError(f"the file is not valid {encoding}{hint}", path=label, line=line,
                        fix=ENCODING_FIX) from None
    except LookupError:
        raise UserError(f"unknown encoding {encoding!r}", path="--encoding",
                        fix="use a Python codec name such as utf-8, latin-1, cp1252") from None


def check_sample_encoding(stream: io.BufferedReader, encoding: str, label: str,
                          first_line: int = 2) -> None:
    """Decode the first buffer of data so a wrong encoding fails now, not after minutes."""
    sample = stream.peek(SNIFF_BYTES)[:SNIFF_BYTES]
    cut = sample.rfind(b"\n")
    if cut <= 0:
        return
    sample = sample[: cut + 1]
    try:
        sample.decode(encoding)
    except UnicodeDecodeError as err:
        line = first_line + sample[: err.start].count(b"\n")
        raise UserError(f"the file is not valid {encoding}", path=label, line=line,
                        fix=ENCODING_FIX) from None


def read_layout(stream: io.BufferedReader, label: str, wanted: tuple[str, ...], *,
                encoding: str, delimiter: str,
                expected_header: tuple[str, ...] | None = None) -> CsvLayout:
    """Read and check the header line; the stream is left at the first data line."""
    first = stream.readline()
    if not first.strip():
        raise UserError("the file is empty (no header line)", path=label, line=1,
                        fix="download or export the file again")
    text = _decode_or_fail(first, "utf-8-sig" if encoding.lower().replace("_", "-")
                           in ("utf-8", "utf8") else encoding, label, 1).rstrip("\r\n")
    header = _split_header(text, delimiter)
    if not set(wanted) <= set(header):
        raise _header_error(label, text, wanted, delimiter, expected_header)
    check_sample_encoding(stream, encoding, label)
    stripped = text.lstrip("\ufeff")
    fast = (delimiter == "," and stripped.startswith('"') and stripped.endswith('"')
            and stripped.count('"') == 2 * len(header))
    return CsvLayout(header, {name: i for i, name in enumerate(header)}, fast)


def _continue_quoted(raw: bytes, lines: Iterator[bytes]) -> tuple[bytes, int]:
    """A quoted value ran over the end of the line: join lines until the quotes balance."""
    extra = 0
    while raw.count(b'"') % 2:
        nxt = next(lines, None)
        if nxt is None:
            break
        raw += nxt
        extra += 1
    return raw, extra


def iter_rows(stream: io.BufferedReader, layout: CsvLayout, label: str,
              columns: tuple[str, ...], *, encoding: str, delimiter: str, issues: RowIssues,
              keys: KeyFilter | None = None, key_column: str | None = None,
              prefilter: Callable[[bytes], bool] | None = None, with_lines: bool = True,
              ) -> Iterator:
    """Yield (line number, values of `columns`) for each data row, or just the values
    tuples when `with_lines` is False (what `executemany` can take as is).

    `keys` keeps only rows whose `key_column` (default: the first column) is a wanted
    entity. `prefilter` is a cheap test on the raw line bytes, applied on the fast path
    before decoding; it must never reject a line the caller would keep. Rows with the
    wrong number of columns are reported to `issues` and skipped. Rows that a filter
    skips are not parsed, so they are not checked either.
    """
    positions = [layout.columns[c] for c in columns]
    pick = itemgetter(*positions) if len(positions) > 1 else (lambda f: (f[positions[0]],))
    ncols = len(layout.header)
    key_pos = layout.columns[key_column] if key_column else 0
    if layout.fast and key_pos == 0:
        return _iter_fast(stream, ncols, label, encoding, issues, keys, prefilter, pick,
                          with_lines)
    rows = _iter_csv(stream, ncols, label, encoding, delimiter, issues, keys, key_pos)
    if with_lines:
        return ((line, pick(fields)) for line, fields in rows)
    return (pick(fields) for _, fields in rows)


def _iter_fast(stream: io.BufferedReader, ncols: int, label: str, encoding: str,
               issues: RowIssues, keys: KeyFilter | None,
               prefilter: Callable[[bytes], bool] | None, pick: Callable,
               with_lines: bool) -> Iterator:
    # The hot loop of a national import (36 M activity lines): keep it flat.
    wanted = keys.fast if keys is not None else None
    quotes = 2 * ncols
    lineno = 1
    lines = iter(stream)
    for raw in lines:
        lineno += 1
        if wanted is not None and raw[1:14] not in wanted:
            continue
        if prefilter is not None and not prefilter(raw):
            continue
        start = lineno
        n_quotes = raw.count(b'"')
        if n_quotes % 2:
            raw, extra = _continue_quoted(raw, lines)
            lineno += extra
            n_quotes = -1
        if n_quotes == quotes:
            try:
                body = raw.decode(encoding).rstrip("\r\n")
            except UnicodeDecodeError:
                raise UserError(f"the file is not valid {encoding}", path=label, line=start,
                                fix=ENCODING_FIX) from None
            if body[-1:] == '"' and body[:1] == '"':
                fields = body[1:-1].split('","')
                if len(fields) == ncols:
                    yield (start, pick(fields)) if with_lines else pick(fields)
                    continue
        parsed = _parse_line(raw, ncols, label, start, encoding, issues)
        if parsed is not None:
            yield (start, pick(parsed)) if with_lines else pick(parsed)


def _parse_line(raw: bytes, ncols: int, label: str, line: int, encoding: str,
                issues: RowIssues) -> list[str] | None:
    """One record the quick split could not take: the csv module's reading of it, or None
    (blank line, or a wrong number of values, reported)."""
    try:
        body = raw.decode(encoding).rstrip("\r\n")
    except UnicodeDecodeError:
        raise UserError(f"the file is not valid {encoding}", path=label, line=line,
                        fix=ENCODING_FIX) from None
    if not body:
        return None
    fields = next(csv.reader([body]), [])
    if len(fields) != ncols:
        issues.add("wrong_column_count", label, line,
                   f"{len(fields)} columns where the header has {ncols}")
        return None
    return fields


def _iter_csv(stream: io.BufferedReader, ncols: int, label: str, encoding: str,
              delimiter: str, issues: RowIssues, keys: KeyFilter | None,
              key_pos: int) -> Iterator[tuple[int, list[str]]]:
    wanted = keys.digits if keys is not None else None
    text = io.TextIOWrapper(stream, encoding=encoding, newline="")
    reader = csv.reader(text, delimiter=delimiter)
    consumed = 0  # lines the reader has taken so far, after the header (file line 1)
    try:
        for fields in reader:
            start = consumed + 2
            consumed = reader.line_num
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                continue
            if wanted is not None and (
                    len(fields) <= key_pos or entity_digits(fields[key_pos]) not in wanted):
                continue
            if len(fields) != ncols:
                issues.add("wrong_column_count", label, start,
                           f"{len(fields)} columns where the header has {ncols}")
                continue
            yield start, fields
    except UnicodeDecodeError:
        raise UserError(f"the file is not valid {encoding}", path=label,
                        line=consumed + 2, fix=ENCODING_FIX) from None
    except csv.Error as err:
        raise UserError(f"unreadable CSV: {err}", path=label, line=consumed + 2,
                        fix="check the quoting of that line, or --delimiter") from None
