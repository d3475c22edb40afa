"""CLI: `horeca export KIND` and `horeca review import FILE`."""

from __future__ import annotations

from pathlib import Path

import typer

from horeca.context import AppContext, console
from horeca.exports.export import FORMATS, KINDS, export_places
from horeca.exports.priority import load_weights
from horeca.exports.review import ReviewImportError, import_review

review_app = typer.Typer(
    name="review", no_args_is_help=True,
    help="Inspectors' verdicts: import a filled export so later runs learn from it.")


def export_command(
    ctx: typer.Context,
    kind: str = typer.Argument(..., metavar="KIND",
                               help="Which places: " + " | ".join(KINDS) + "."),
    output: Path = typer.Option(..., "-o", "--output", metavar="PATH",
                                help="File to write ('-' = standard output, not for xlsx)."),
    fmt: str = typer.Option(None, "--format", "-f", metavar="FORMAT",
                            help=" | ".join(FORMATS) + " (default: from the file name)."),
    reveal: bool = typer.Option(
        False, "--reveal",
        help="Show natural persons' names, phones, websites and house numbers in clear. "
             "Recorded in the audit log with the places revealed."),
    limit: int = typer.Option(None, "--limit", min=1, help="Only the N highest-priority rows."),
    weights: Path = typer.Option(None, "--weights", metavar="TOML",
                                 help="Priority weights overriding the defaults "
                                      "(see docs/methodology.md, Priority)."),
    include_reviewed: bool = typer.Option(
        False, "--include-reviewed",
        help="Also list places an inspector already settled (confirmed, registered under, "
             "closed, false positive)."),
) -> None:
    """Write the ranked, explained list of places of one kind.

    One row per place: priority rank and reason, sources, names, address, phone, website,
    coordinates, online activity, the best register candidates with their grade strings,
    and empty verdict columns for inspectors. Natural persons are pseudonymised unless
    --reveal. Every export is audited.

    Example:  horeca export no-match --format xlsx -o no-match.xlsx --limit 200
    """
    app_ctx = AppContext.of(ctx)
    args = {"kind": kind, "output": str(output), "format": fmt, "reveal": reveal,
            "limit": limit, "weights": str(weights) if weights else None,
            "include_reviewed": include_reviewed}
    chosen = load_weights(weights)
    with app_ctx.step("export", args) as step:
        summary = export_places(step.db, kind, fmt, output, reveal=reveal,
                                actor=app_ctx.actor, purpose=app_ctx.purpose, limit=limit,
                                weights=chosen, include_reviewed=include_reviewed)
        step.counts = {"rows": summary.rows, **summary.by_outcome,
                       "pseudonymised": summary.pseudonymised, "revealed": summary.revealed,
                       "left_out_reviewed": summary.left_out_reviewed}
    outcomes = ", ".join(f"{n} {o}" for o, n in sorted(summary.by_outcome.items())) or "none"
    console.print(f"wrote {summary.rows} places ({outcomes}) to {summary.path} "
                  f"[{summary.fmt}]")
    if summary.pseudonymised:
        console.print(f"  {summary.pseudonymised} natural-person rows pseudonymised "
                      "(--reveal to show them, audited)")
    if summary.revealed:
        console.print(f"  {summary.revealed} natural-person rows shown in clear; recorded in "
                      "the audit log")
    if summary.left_out_reviewed:
        console.print(f"  {summary.left_out_reviewed} places already settled by a verdict left "
                      "out (--include-reviewed to list them)")
    if summary.without_coordinates and summary.fmt in ("geojson", "html"):
        console.print(f"  {summary.without_coordinates} places have no coordinates "
                      "(no point on the map)")
    if summary.attribution:
        console.print(f"  {summary.attribution}")


@review_app.command("import")
def review_import_command(
    ctx: typer.Context,
    file: Path = typer.Argument(..., metavar="FILE",
                                help="A filled CSV or XLSX export (verdict column filled)."),
    reviewer: str = typer.Option(..., "--reviewer", help="Who gave the verdicts."),
    skip_invalid: bool = typer.Option(
        False, "--skip-invalid", help="Store the valid rows even if others have problems."),
) -> None:
    """Store the verdicts of a filled export; later runs carry them forward.

    Verdicts: confirmed, registered_under (with register_number), closed, false_positive,
    not_visited. Every row is checked first; with any problem nothing is stored unless
    --skip-invalid. Importing the same file twice adds nothing.

    Example:  horeca review import no-match-filled.xlsx --reviewer "A. Janssens"
    """
    app_ctx = AppContext.of(ctx)
    with app_ctx.step("review import", {"file": str(file), "reviewer": reviewer,
                                        "skip_invalid": skip_invalid}) as step:
        try:
            summary = import_review(step.db, file, reviewer, app_ctx.actor, app_ctx.purpose,
                                    skip_invalid=skip_invalid, run_id=step.run_id)
        except ReviewImportError as err:
            for problem in err.problems[1:20]:
                console.print(problem.render(str(file)), markup=False)
            if len(err.problems) > 20:
                console.print(f"... and {len(err.problems) - 20} more", markup=False)
            raise
        step.counts = {"rows": summary.rows_read, "verdicts": summary.with_verdict,
                       "added": summary.added, "changed": summary.changed,
                       "unchanged": summary.unchanged, "skipped_invalid": summary.skipped_invalid}
    for problem in summary.problems:
        console.print(f"skipped {problem.render(str(file))}", markup=False)
    console.print(f"{summary.with_verdict} verdicts by {summary.reviewer}: {summary.added} "
                  f"added, {summary.changed} changed, {summary.unchanged} already stored; "
                  f"{summary.without_verdict} rows without a verdict ignored", markup=False)
    if summary.keying_results_changed:
        console.print(f"{summary.keying_results_changed} places now matched to the number an "
                      "inspector gave (registered_under)")


def register(app: typer.Typer) -> None:
    """Add this component's commands to the root app."""
    app.command("export", help=export_command.__doc__)(export_command)
    app.add_typer(review_app, name="review")

