"""Every TOML file the user gives is read the same way: file, line and fix on one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from horeca.errors import UserError
from horeca.region import resolve_region
from horeca.tomlfile import parse_toml, read_toml


def test_syntax_error_names_the_file_and_the_line() -> None:
    with pytest.raises(UserError) as caught:
        parse_toml('[a]\nx = 1\ny = "unclosed\n', "conf.toml")
    assert caught.value.path == "conf.toml" and caught.value.line == 3
    assert str(caught.value).startswith("conf.toml:3: malformed TOML")


def test_missing_file_names_the_option_to_check(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"weights file not found.*check the --weights path"):
        read_toml(tmp_path / "nope.toml", what="weights file", option="--weights")


def test_file_in_another_encoding_says_to_save_as_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes('label = "Café"\n'.encode("latin-1"))
    with pytest.raises(UserError, match=r"not UTF-8 text.*save it as UTF-8"):
        read_toml(path, what="mapping file", option="--mapping")


def test_good_file_is_parsed(tmp_path: Path) -> None:
    path = tmp_path / "ok.toml"
    path.write_text('[priority]\nreviews = 2.0\n', encoding="utf-8")
    assert read_toml(path, what="weights file", option="--weights") == {
        "priority": {"reviews": 2.0}}


def test_user_regions_file_with_a_syntax_error_points_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "regions.toml"
    path.write_text('[ghent]\nlabel = "Gent"\npostcodes = 9000 9050\n', encoding="utf-8")
    with pytest.raises(UserError) as caught:
        resolve_region("ghent", regions_file=path)
    assert caught.value.path == str(path) and caught.value.line == 3


def test_bracket_left_open_until_the_end_says_to_close_it() -> None:
    with pytest.raises(UserError, match="close the last bracket or quote") as caught:
        parse_toml('postcodes = ["9000"\n', "regions.toml")
    assert caught.value.line is None
