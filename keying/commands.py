"""CLI: `horeca key` and `horeca evaluate`."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from horeca.context import AppContext, console
from horeca.errors import UserError
from horeca.keying.config import load_config
from horeca.keying.evaluate import evaluate_store, evaluate_verdicts, render_report
from horeca.keying.store_io import KeyingSummary, key_region
from horeca.region import resolve_region

ENV_CONFIG = "HORECA_KEYING_CONFIG"


def key_command(
    ctx: typer.Context,
    region: str = typer.Option("brussels", "--region",
                               help="Named region: its listings and its active register."),
    config_path: Path = typer.Option(
        None, "--config", envvar=ENV_CONFIG, metavar="FILE",
        help="keying.toml with thresholds, grade cut-offs and blocking limits "
             "(see docs/methodology.md); defaults otherwise."),
    snapshot_region: str = typer.Option(
        None, "--snapshot-region", metavar="NAME",
        help="Key against the active register of this region instead (e.g. a national "
             "import under 'belgium'); default: --region."),
    regions_file: Path = typer.Option(None, "--regions", metavar="FILE",
                                      help="Extra region definitions (TOML)."),
    no_verdicts: bool = typer.Option(False, "--no-verdicts",
                                     help="Ignore reviewed verdicts (no labels, no forced "
                                          "matches)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
) -> None:
    """Link the region's listings to the register: match, doubt or no-match, explained.

    Consolidates listings of one business across platforms into places, finds candidate
    register units, grades every field, scores with weights learnt from the data (and from
    reviewed verdicts), and replaces the previous keying results.

    Examples:

      horeca key --region brussels

      horeca key --region brussels --config keying.toml

      horeca key --region brussels --snapshot-region belgium
    """
    app_ctx = AppContext.of(ctx)
    the_region = resolve_region(region, regions_file=regions_file)
    config = load_config(config_path)
    args = {"region": region, "snapshot_region": snapshot_region,
            "config": str(config_path) if config_path else None, "verdicts": not no_verdicts}
    with app_ctx.step("key", args) as step, Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            console=console, transient=True) as bar:
        task = bar.add_task("register units scanned", total=None)
        stages = {"register keys": "indexing the register (once per snapshot)",
                  "register": "register units scanned"}

        def progress(stage: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total,
                       description=stages.get(stage, stage))

        summary = key_region(step.db, region_key=region, region=the_region,
                             snapshot_region=snapshot_region, config=config,
                             run_id=step.run_id, actor=app_ctx.actor,
                             purpose=app_ctx.purpose, progress=progress,
                             use_verdicts=not no_verdicts)
        step.counts = summary.as_counts()
    if as_json:
        typer.echo(json.dumps(summary.as_counts(), indent=2))
    _print_summary(summary)


def _print_summary(s: KeyingSummary) -> None:
    total = max(1, s.places)
    console.print(f"Keyed {s.listings} listings as {s.places} places against register "
                  f"snapshot {s.snapshot_id} ({s.units_scanned} units, {s.pairs} pairs "
                  f"compared).")
    for outcome in ("match", "doubt", "no-match"):
        n = s.counts.get(outcome, 0)
        console.print(f"  {outcome:<9} {n:>6}  ({100 * n / total:.1f}%)")
    if "register_keys" in s.seconds:
        console.print(f"  indexed register snapshot {s.snapshot_id} first "
                      f"({s.seconds['register_keys']:.1f} s, once per snapshot).")
    if s.labelled_places:
        console.print(f"  {s.labelled_places} places carry reviewed verdicts (used as labels).")
    console.print("Next: horeca export no-match --format xlsx -o no-match.xlsx")


def evaluate_command(
    ctx: typer.Context,
    truth: Path = typer.Option(None, "--truth", metavar="FILE",
                               help="Ground-truth CSV: source, source_id, unit_id (or "
                                    "establishment_number / enterprise_number), "
                                    "difficulties."),
    verdicts: bool = typer.Option(False, "--verdicts",
                                  help="Use reviewed verdicts as labels instead of a truth "
                                       "file."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON on stdout."),
) -> None:
    """Measure the stored keying results: precision and recall of match, share of doubt,
    precision of no-match, blocking recall, and a table by difficulty.

    Examples:

      horeca evaluate --truth fixtures/demo/truth.csv

      horeca evaluate --verdicts --json
    """
    if bool(truth) == bool(verdicts):
        raise UserError("give exactly one of --truth FILE or --verdicts", path="evaluate",
                        fix="e.g. horeca evaluate --truth fixtures/demo/truth.csv")
    app_ctx = AppContext.of(ctx)
    db = app_ctx.db()
    report = evaluate_store(db, truth) if truth else evaluate_verdicts(db)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        typer.echo(render_report(report))


def register(app: typer.Typer) -> None:
    """Add this component's commands to the root app."""
    app.command("key", help=key_command.__doc__)(key_command)
    app.command("evaluate", help=evaluate_command.__doc__)(evaluate_command)
