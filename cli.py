"""The `horeca` command line.

Global options come first (`horeca --db my.db run --region brussels`). Each component
adds its commands from its own `commands.py`, so this file stays a table of contents of
the pipeline, in the order data flows.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

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
        return sorted(self.commands, key=lambda name: rank.get(name, len(rank)))

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


def _register_components() -> None:
    # Order = data flow; each module adds its commands (and sub-groups) to `app`.
    from horeca.exports import commands as exports_cmds
    from horeca.geocode import commands as geocode_cmds
    from horeca.keying import commands as keying_cmds
    from horeca.legal_gate import commands as gate_cmds
    from horeca.pipeline import commands as pipeline_cmds
    from horeca.register import commands as register_cmds
    from horeca.spiders import commands as spider_cmds

    for module in (pipeline_cmds, gate_cmds, spider_cmds, register_cmds, geocode_cmds,
                   keying_cmds, exports_cmds):
        module.register(app)


_register_components()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
