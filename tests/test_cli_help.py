"""`horeca --help` teaches: every command explains itself with an example, in data-flow order."""

from __future__ import annotations

from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from horeca.cli import COMMAND_ORDER, COMPONENT_COMMANDS, app, component_commands

RUNNER = CliRunner()


def _command_paths() -> list[list[str]]:
    root = typer.main.get_command(app)
    paths: list[list[str]] = []

    # typer 0.29 vendors click, so groups are recognised by their sub-commands, not by
    # type; components load their commands when asked (`get_command`).
    def walk(command: Any, path: list[str]) -> None:
        if hasattr(command, "commands"):
            ctx = command.make_context("horeca", ["--help"], resilient_parsing=True)
            for name in command.list_commands(ctx):
                walk(command.get_command(ctx, name), [*path, name])
        else:
            paths.append(path)

    walk(root, [])
    return paths


def test_top_level_help_lists_commands_in_data_flow_order() -> None:
    result = RUNNER.invoke(app, ["--help"])
    assert result.exit_code == 0
    listed = [line.split()[0] for line in result.output.split("Commands:")[1].splitlines()
              if line.startswith("  ") and not line.startswith("   ")]
    assert listed == [name for name in COMMAND_ORDER if name in listed]
    assert set(listed) == set(COMMAND_ORDER)


@pytest.mark.parametrize("path", _command_paths(), ids=" ".join)
def test_every_command_help_shows_an_example(path: list[str]) -> None:
    result = RUNNER.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "horeca " in result.output.split("Options:")[0], (
        f"`horeca {' '.join(path)} --help` has no example command line")


def test_the_cli_starts_without_importing_pandas_which_stays_importable() -> None:
    """sqlite-utils would import pandas (0.4 s of every command) for a type horeca never
    writes; the command line starts without it, and code that wants pandas still gets it."""
    import subprocess
    import sys

    script = ("import sys, horeca.cli, sqlite_utils.db; print('pandas' in sys.modules); "
              "import pandas; print(bool(pandas.DataFrame))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "True"]


@pytest.mark.parametrize("module", COMPONENT_COMMANDS)
def test_the_command_table_names_exactly_what_each_component_adds(module: str) -> None:
    # The command line imports a component only when one of its commands runs, by this
    # table: a command missing from it would never be found.
    assert sorted(component_commands(module)) == sorted(COMPONENT_COMMANDS[module])


def test_a_command_imports_only_its_own_component() -> None:
    """`horeca key` starts without the crawler, the importers or the exporters."""
    import subprocess
    import sys

    script = ("import sys; sys.argv = ['horeca', 'key', '--help']\n"
              "from horeca.cli import main\n"
              "try:\n    main()\nexcept SystemExit:\n    pass\n"
              "print(sorted(m for m in sys.modules if m.startswith(('horeca.spiders', "
              "'horeca.exports.export', 'horeca.register.importer', 'horeca.geocode.run', "
              "'scrapy'))), file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True)
    assert "Usage: horeca key" in done.stdout
    assert done.stderr.strip().splitlines()[-1] == "[]"
