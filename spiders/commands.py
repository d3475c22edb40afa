"""CLI: `horeca crawl` and `horeca listings import`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from horeca.context import AppContext, console
from horeca.errors import UserError
from horeca.region import resolve_region
from horeca.spiders.model import COVERAGE_FIELDS
from horeca.spiders.report import CrawlReport

CRAWL_HELP = """Crawl approved sources for one region's HoReCa listings.

Every source passes the legal gate first (approval, terms hash, TDM opt-out, robots.txt);
a refused source is shown with the reason and nothing is fetched from it. Each crawl is
polite (the source's user agent and rate, one request at a time per site, AutoThrottle,
retries honouring Retry-After), resumable (run the same command again after an
interruption) and ends with a report: pages, listings kept and dropped by reason, field
coverage and errors. A crawl whose coverage collapses against the previous one is
flagged in red.

Example:  horeca crawl gustoreviews tablebook --region brussels

Example:  horeca crawl --all --region brussels --sources fixtures/demo/sources.toml
"""

IMPORT_HELP = """Import listings gathered elsewhere (CSV or JSON lines, any column names).

A mapping TOML says which column holds which field ([columns] name = "Business name",
...; [options] delimiter, encoding, format, default_country). Rows go through the legal
gate's minimisation for --source (which must be an approved source in the sources file)
and the same normalisation as a crawl, then are upserted: importing the same file twice
changes nothing. A bad line stops the import with the file and line, and nothing is
written.

Example:  horeca listings import other-tool.csv --mapping other-tool.toml --source gustoreviews
"""


def _pct(value: float) -> str:
    return f"{value * 100:.0f}%"


def render_reports(reports: list[CrawlReport]) -> list[Table]:
    """A summary table (one row per source) and a field-coverage table."""
    summary = Table(title="Crawl", title_justify="left")
    for column in ("source", "status", "pages", "listings", "kept", "new", "updated",
                   "dropped", "errors"):
        summary.add_column(column, overflow="fold",
                           justify="right" if column in {"pages", "listings", "kept", "new",
                                                         "updated"} else "left")
    coverage = Table(title="Field coverage of kept listings", title_justify="left")
    coverage.add_column("source")
    for field in COVERAGE_FIELDS:
        coverage.add_column(field, justify="right")
    for r in reports:
        if r.status in {"refused", "skipped", "failed"}:
            style = "red" if r.status == "failed" else "yellow"
            summary.add_row(r.source, f"[{style}]{r.status}[/]", "", "", "", "", "",
                            f"[{style}]{r.reason or ''}[/]", "")
            continue
        status = "[bold red]FLAGGED[/]" if r.flags else (
            "ok" if r.status == "ok" else f"[yellow]{r.status}[/]")
        dropped = ", ".join(f"{k} {v}" for k, v in r.dropped.items()) or "-"
        errors = ", ".join(f"{k} {v}" for k, v in r.errors.items()) or "-"
        summary.add_row(r.source, status, str(r.pages), str(r.items), str(r.kept), str(r.new),
                        str(r.updated), dropped, errors)
        coverage.add_row(r.source, *(_pct(r.coverage.get(f, 0.0)) for f in COVERAGE_FIELDS),
                         style="red" if r.flags else None)
    return [summary, coverage] if coverage.row_count else [summary]


def print_reports(reports: list[CrawlReport]) -> None:
    for table in render_reports(reports):
        console.print(table)
    for r in reports:
        for flag in r.flags:
            console.print(f"[bold red]flagged[/] {r.source}: {flag} - check the site's "
                          "layout and the spider options before using this crawl")
        if r.status == "interrupted":
            console.print(f"[yellow]{r.source}[/]: {r.reason}")


def crawl(
    ctx: typer.Context,
    sources: list[str] = typer.Argument(None, help="Source names from the sources file.",
                                        show_default=False),
    all_sources: bool = typer.Option(False, "--all", help="Every source in the file (the "
                                     "gate refuses those not approved)."),
    region: str = typer.Option(None, "--region", help="Named region, e.g. brussels."),
    postcodes: str = typer.Option(None, "--postcodes", help="Postcodes, e.g. 1000,1040-1050."),
    bbox: str = typer.Option(None, "--bbox", help="south,west,north,east in degrees."),
    regions_file: Path = typer.Option(None, "--regions", help="Extra regions TOML."),
    sources_file: Path = typer.Option(None, "--sources", envvar="HORECA_SOURCES",
                                      show_default="sources.toml",
                                      help="The sources config."),
    proxy: str = typer.Option(None, "--proxy", help="HTTP proxy for every request, e.g. "
                              "the demo's fixture server http://127.0.0.1:8899."),
    http_cache: bool = typer.Option(False, "--http-cache", help="Keep responses in "
                                    ".horeca/httpcache beside the database and reuse them."),
    parallel: int = typer.Option(1, "--parallel", min=1, help="Crawl this many sources at "
                                 "once (each site still gets one request at a time)."),
) -> None:
    from horeca.legal_gate.config import resolve_sources_path
    from horeca.spiders.runner import crawl_sources

    app_ctx = AppContext.of(ctx)
    if bool(sources) == all_sources:
        raise UserError("name the sources to crawl, or pass --all (not both)",
                        path="horeca crawl", fix="e.g. horeca crawl --all --region brussels")
    the_region = resolve_region(region, postcodes=postcodes, bbox=bbox,
                                regions_file=regions_file)
    sources_path = resolve_sources_path(sources_file)
    args = {"sources": sources or "all", "region": the_region.name, "proxy": proxy,
            "http_cache": http_cache, "parallel": parallel, "sources_file": str(sources_path)}
    with app_ctx.step("crawl", args) as step, Progress(
            SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
            console=console, transient=True) as bar:
        tasks: dict[str, int] = {}

        def progress(name: str, counts: dict[str, int]) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(name, total=None)
            bar.update(tasks[name], description=(
                f"{name}: {counts.get('pages', 0)} pages, {counts.get('items', 0)} "
                f"listings, {counts.get('kept', 0)} kept"))

        reports = crawl_sources(app_ctx.db_path, sources_path, None if all_sources else sources,
                                the_region, proxy, run_id=step.run_id, actor=app_ctx.actor,
                                purpose=app_ctx.purpose, http_cache=http_cache,
                                parallel=parallel, progress=progress)
        step.counts = {r.source: {"status": r.status, "kept": r.kept, "flags": len(r.flags)}
                       for r in reports}
    print_reports(reports)


def import_listings_cmd(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="CSV or JSON-lines file of listings."),
    mapping: Path = typer.Option(..., "--mapping", help="TOML mapping fields to columns."),
    source: str = typer.Option(..., "--source", help="The approved source these listings "
                               "come from (its allowed fields apply)."),
    region: str = typer.Option(None, "--region", help="Keep only listings in this region."),
    sources_file: Path = typer.Option(None, "--sources", envvar="HORECA_SOURCES",
                                      show_default="sources.toml", help="The sources config."),
) -> None:
    from horeca.legal_gate.audit import record
    from horeca.legal_gate.config import load_sources
    from horeca.spiders.importer import import_listings, load_mapping
    from horeca.store import transaction

    app_ctx = AppContext.of(ctx)
    config = load_sources(sources_file)
    the_source = config.get(source)
    if not the_source.approved:
        raise UserError(f"source {source!r} is {the_source.status}, not approved: its "
                        "listings cannot be imported", path=config.path,
                        fix=f"have a reviewer run `horeca sources approve {source} ...`")
    the_mapping = load_mapping(mapping)
    the_region = resolve_region(region) if region else None
    args = {"file": str(file), "mapping": str(mapping), "source": source, "region": region}
    with app_ctx.step("listings import", args) as step:
        db = step.db
        with transaction(db):
            result = import_listings(db, file, the_mapping, the_source, region=the_region,
                                     run_id=step.run_id)
            record(db, "listings_import", actor=app_ctx.actor, source=source,
                   target=str(file), rows=result.kept, purpose=app_ctx.purpose,
                   details={"mapping": str(mapping), "rows": result.rows,
                            "dropped": result.dropped, "run_id": step.run_id})
        step.counts = {"rows": result.rows, "kept": result.kept, "new": result.new,
                       "updated": result.updated, "dropped": result.dropped}
    dropped = ", ".join(f"{k} {v}" for k, v in result.dropped.items()) or "none"
    coverage = " ".join(f"{f} {_pct(v)}" for f, v in result.coverage.items())
    console.print(f"imported {result.kept} of {result.rows} rows from {file} as source "
                  f"{source} ({result.new} new, {result.updated} updated); dropped: {dropped}")
    console.print(f"coverage: {coverage}")


def register(app: typer.Typer) -> None:
    """Add this component's commands to the root app."""
    app.command("crawl", help=CRAWL_HELP, no_args_is_help=True)(crawl)
    listings = typer.Typer(help="Listings gathered outside a crawl.", no_args_is_help=True)
    listings.command("import", help=IMPORT_HELP, no_args_is_help=True)(import_listings_cmd)
    app.add_typer(listings, name="listings")
