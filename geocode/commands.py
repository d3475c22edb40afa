"""CLI: `horeca geocode`, `horeca geocode import-best`, `horeca geocode import-gazetteer`."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from horeca.context import AppContext, console
from horeca.geocode.config import ENV_CONFIG, load_config, with_overrides
from horeca.geocode.loaders import ImportSummary, import_best, import_segments
from horeca.geocode.model import PRECISIONS, GeocodeSummary
from horeca.geocode.run import geocode_pending
from horeca.region import Region, resolve_region

geocode_app = typer.Typer(
    help=(
        "Geocode listings and register units: cache, then the offline gazetteer, then "
        "(only if allowed) an online geocoder.\n\n"
        "Example:  horeca geocode --region brussels"
    ),
    invoke_without_command=True,
    no_args_is_help=False,
)


def _region(name: str | None, postcodes: str | None) -> Region | None:
    if not name and not postcodes:
        return None
    return resolve_region(name, postcodes=postcodes)


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeRemainingColumn(), console=console, transient=True)


@geocode_app.callback()
def geocode(
    ctx: typer.Context,
    online: bool = typer.Option(
        None, "--online/--offline",
        help="Send what the gazetteer cannot place to the online geocoder (default: the "
             "config's `online`, else off). Cached answers are used either way."),
    provider: str = typer.Option(
        None, "--provider", help="geopy provider for online lookups (default nominatim)."),
    user_agent: str = typer.Option(
        None, "--user-agent",
        help="Identifying user agent with a contact, required online, e.g. "
             "'horeca/0.1 (unit@example.org)'."),
    config_path: Path = typer.Option(
        None, "--config", envvar=ENV_CONFIG, metavar="FILE",
        help="TOML file with a [geocode] table (see docs/geocoding.md)."),
    region: str = typer.Option(None, "--region", help="Only this named region (e.g. brussels)."),
    postcodes: str = typer.Option(None, "--postcodes",
                                  help="Only these postcodes: 1000,1040-1050."),
    redo_all: bool = typer.Option(False, "--all", help="Geocode everything again, not only "
                                  "what is pending."),
    gap_threshold: float = typer.Option(
        None, "--gap-threshold", metavar="METRES",
        help="Flag listings this far from their geocoded address (default 250)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
) -> None:
    """Geocode pending listings and register units.

    Examples:

      horeca geocode --region brussels

      horeca geocode --online --user-agent "horeca/0.1 (unit@example.org)"
    """
    if ctx.invoked_subcommand is not None:
        return
    app_ctx = AppContext.of(ctx)
    config = with_overrides(load_config(config_path), provider=provider, user_agent=user_agent,
                            gap_threshold_m=gap_threshold)
    scope = _region(region, postcodes)
    args = {"online": online, "provider": config.provider, "region": scope.name if scope else None,
            "postcodes": postcodes, "all": redo_all}
    with app_ctx.step("geocode", args) as step, _progress() as bar:
        tasks: dict[str, int] = {}

        def report(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                label = "gazetteer" if phase == "offline" else f"online ({config.provider})"
                tasks[phase] = bar.add_task(label, total=total)
            bar.update(tasks[phase], completed=done, total=total)

        summary = geocode_pending(step.db, scope, online=online, config=config,
                                  redo_all=redo_all, progress=report, actor=app_ctx.actor,
                                  purpose=app_ctx.purpose)
        step.counts = summary.as_counts()
    if as_json:
        typer.echo(json.dumps(summary.as_counts(), sort_keys=True))
    print_summary(summary)


def _say(text: str) -> None:
    # One fact per line: never wrapped in the middle of a count or a name.
    console.print(text, soft_wrap=True, markup=False)


def _counter_text(counter: dict[str, int], order: tuple[str, ...] = ()) -> str:
    keys = [k for k in order if counter.get(k)] + sorted(k for k in counter if k not in order)
    return ", ".join(f"{k} {counter[k]}" for k in keys if counter[k])


def print_summary(s: GeocodeSummary) -> None:
    _say(f"geocode: {s.pending} pending of {s.entities} in scope "
                  f"({s.up_to_date} up to date), {s.queries} distinct addresses, "
                  f"{s.cache_hits} answers from the cache")
    if s.entities:
        _say(f"  precision: {_counter_text(s.by_precision, (*PRECISIONS, 'none'))}")
        _say(f"  providers: {_counter_text(s.by_provider) or 'none'}")
    if s.failed:
        _say(f"  without position: {s.failed} ({_counter_text(s.failures)})")
    if s.online_requests or s.online_queries or s.online_errors:
        errors = f"; failed: {_counter_text(s.online_errors)}" if s.online_errors else ""
        _say(f"  online: {s.online_requests} requests for {s.online_queries} "
                      f"addresses{errors}")
    if s.online_skipped:
        _say(f"  {s.online_skipped} addresses could be refined online "
                      "(pass --online with an identifying --user-agent)")
    if s.gaps_checked:
        _say(f"  gaps: {s.large_gaps} of {s.gaps_checked} entities with their own "
                      f"coordinates lie more than {s.gap_threshold_m:g} m from their address")
    if s.bad_coordinates:
        _say(f"  {s.bad_coordinates} entities carry unusable coordinates (0,0 or "
                      "out of range)")
    if s.attribution:
        _say(f"  {s.attribution}")


def _print_import(summary: ImportSummary, what: str) -> None:
    _say(f"{what}: {summary.rows_kept} rows kept of {summary.rows_read} read "
                  f"as source {summary.source!r} ({summary.postcodes} postcodes, "
                  f"{summary.encoding})")
    for reason, n in sorted(summary.skipped.items()):
        _say(f"  skipped {n} rows: {reason} (first at line "
                      f"{summary.first_skipped_line[reason]})")
    _say("  cached gazetteer answers dropped; `horeca geocode` re-geocodes what "
                  "they placed")


@geocode_app.command("import-best")
def import_best_cmd(
    ctx: typer.Context,
    file: Path = typer.Argument(..., metavar="FILE",
                                help="BeST Address CSV (.csv, .csv.gz or .zip)."),
    name: str = typer.Option(None, "--name", help="Source name (default: the file name); "
                             "importing again under the same name replaces it."),
    region: str = typer.Option(None, "--region", help="Keep only this region's postcodes."),
    postcodes: str = typer.Option(None, "--postcodes", help="Keep only these postcodes."),
    encoding: str = typer.Option(None, "--encoding", help="Force the file's encoding "
                                 "(default: guessed; e.g. utf-8, cp1252)."),
) -> None:
    """Import BeST Address points into the offline gazetteer.

    Example:  horeca geocode import-best openaddress-bebru.zip --region brussels
    """
    app_ctx = AppContext.of(ctx)
    scope = _region(region, postcodes)
    with app_ctx.step("geocode import-best", {"file": str(file), "name": name,
                                              "region": scope.name if scope else None}) as step:
        with _progress() as bar:
            task = bar.add_task(f"reading {file.name}", total=None)
            summary = import_best(step.db, file, source=name, region=scope, encoding=encoding,
                                  run_id=step.run_id, actor=app_ctx.actor,
                                  purpose=app_ctx.purpose,
                                  progress=lambda done, total: bar.update(
                                      task, completed=done, total=total))
        step.counts = summary.as_counts()
    _print_import(summary, "BeST Address")


@geocode_app.command("import-gazetteer")
def import_gazetteer_cmd(
    ctx: typer.Context,
    file: Path = typer.Argument(..., metavar="FILE", help="Street-segment gazetteer CSV."),
    name: str = typer.Option(None, "--name", help="Source name (default: the file's stem); "
                             "importing again under the same name replaces it."),
    encoding: str = typer.Option(None, "--encoding", help="Force the file's encoding."),
) -> None:
    """Import a street-segment gazetteer (street_fr, street_nl, postcode, house_from,
    house_to, lat_start, lon_start, lat_end, lon_end, ...).

    Example:  horeca geocode import-gazetteer fixtures/demo/gazetteer.csv
    """
    app_ctx = AppContext.of(ctx)
    with app_ctx.step("geocode import-gazetteer", {"file": str(file), "name": name}) as step:
        summary = import_segments(step.db, file, source=name, encoding=encoding,
                                  run_id=step.run_id, actor=app_ctx.actor,
                                  purpose=app_ctx.purpose)
        step.counts = summary.as_counts()
    _print_import(summary, "gazetteer")


def register(app: typer.Typer) -> None:
    """Add this component's commands to the root app."""
    app.add_typer(geocode_app, name="geocode")
