"""The `horeca` command line.

Global options come first (`horeca --db my.db run --region brussels`). Each component
adds its commands from its own `commands.py`, so this file stays a table of contents of
the pipeline, in the order data flows.
"""

from __future__ import annotations

import importlib
import sqlite3
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from horeca.lean_imports import import_sqlite_utils_without_pandas

import_sqlite_utils_without_pandas()  # before any module of ours imports it

from horeca import __version__  # noqa: E402
from horeca.context import DEFAULT_PURPOSE, ENV_ANALYST, ENV_PURPOSE, AppContext  # noqa: E402
from horeca.errors import UserError  # noqa: E402
from horeca.store import ENV_DB, resolve_db_path  # noqa: E402

USER_ERROR_EXIT = 2
# How `horeca --help` lists the commands: the whole chain, then each step as data flows
# through it, then housekeeping. A command missing here is listed last.
COMMAND_ORDER = ("run", "demo", "sources", "crawl", "listings", "register", "geocode", "key",
                 "evaluate", "export", "review", "audit", "purge")
# Which component's `commands.py` adds each command. A component is imported only when one
# of its commands runs (or `--help` lists them all), so that `horeca key` does not pay for
# importing the crawler or the exporters (a quarter of a second).
COMPONENT_COMMANDS = {
    "horeca.pipeline.commands": ("run", "demo"),
    "horeca.legal_gate.commands": ("sources", "audit", "purge"),
    "horeca.spiders.commands": ("crawl", "listings"),
    "horeca.register.commands": ("register",),
    "horeca.geocode.commands": ("geocode",),
    "horeca.keying.commands": ("key", "evaluate"),
    "horeca.exports.commands": ("export", "review"),
}
_COMPONENT_OF = {name: module for module, names in COMPONENT_COMMANDS.items()
                 for name in names}


def _fail(message: str) -> typer.Exit:
    """Print a user's mistake as one line on stderr; the caller raises the returned Exit."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=USER_ERROR_EXIT)


class HorecaGroup(TyperGroup):
    """Turns user mistakes raised anywhere below into one clear line, exit status 2.

    It prints and raises `typer.Exit` rather than a click exception: typer vendors its own
    click, so an exception class from a separately installed click would not be caught.
    """

    def list_commands(self, ctx) -> list[str]:  # type: ignore[no-untyped-def]
        # Data-flow order, not alphabetical (typer would list sub-groups after commands).
        rank = {name: i for i, name in enumerate(COMMAND_ORDER)}
        return sorted({*self.commands, *_COMPONENT_OF},
                      key=lambda name: rank.get(name, len(rank)))

    def get_command(self, ctx, cmd_name: str):  # type: ignore[no-untyped-def]
        if cmd_name not in self.commands and cmd_name in _COMPONENT_OF:
            self.commands.update(component_commands(_COMPONENT_OF[cmd_name]))
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx):  # type: ignore[no-untyped-def]
        try:
            return super().invoke(ctx)
        except UserError as err:
            raise _fail(err.render()) from None
        except sqlite3.OperationalError as err:
            if "locked" in str(err) or "busy" in str(err):
                raise _fail("the database is locked by another process (fix: wait for the "
                            "other horeca command to finish, then retry)") from None
            raise
        except KeyboardInterrupt:
            typer.echo("interrupted: what was written is kept; run the same command again "
                       "to resume", err=True)
            raise typer.Exit(code=130) from None


app = typer.Typer(
    cls=HorecaGroup,
    name="horeca",
    help=(
        "Find HoReCa businesses visible online but missing from, or inconsistent with, "
        "the enterprise register.\n\n"
        "Pipeline: sources (legal gate) -> crawl -> register import -> geocode -> key -> "
        "export.\n\n"
        "Try it offline on the bundled Brussels demo:  horeca demo"
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"horeca {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    ctx: typer.Context,
    db: Path = typer.Option(
        None, "--db", envvar=ENV_DB, show_default="horeca.db",
        help="SQLite database holding every step's data.", metavar="PATH"),
    analyst: str = typer.Option(
        None, "--analyst", envvar=ENV_ANALYST,
        help="Your name for the audit log (default: your OS user)."),
    purpose: str = typer.Option(
        DEFAULT_PURPOSE, "--purpose", envvar=ENV_PURPOSE,
        help="Why you run this; recorded in the audit log."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Show the version and exit."),
) -> None:
    ctx.obj = AppContext(db_path=resolve_db_path(db), analyst=analyst, purpose=purpose,
                         db_explicit=bool(db))


def component_commands(module_name: str) -> dict[str, Any]:
    """The click commands that a component's `commands.py` adds (its `register(app)`)."""
    module = importlib.import_module(module_name)
    component = typer.Typer(rich_markup_mode=None, pretty_exceptions_show_locals=False)
    module.register(component)
    return dict(typer.main.get_group(component).commands)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
