"""`horeca run` (one region, the whole chain) and `horeca demo` (the same, offline, bundled)."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.table import Table

from horeca.context import AppContext, console
from horeca.pipeline.chain import EXPORT_FORMATS, ChainOptions, ChainResult, run_chain
from horeca.region import resolve_region

DEMO_ROOT = Path(__file__).resolve().parent.parent / "fixtures" / "demo"


def _notice(total: int):
    counter = {"n": 0}

    def show(text: str) -> None:
        counter["n"] += 1
        console.print(f"[bold cyan][{counter['n']}/{total}][/] {text}")

    return show


def _outcome_counts(db) -> dict[str, int]:
    rows = db.execute("SELECT outcome, count(*) FROM keying_results GROUP BY outcome").fetchall()
    return {outcome: n for outcome, n in rows}


def print_summary(db, result: ChainResult, out_dir: Path, seconds: float) -> dict[str, int]:
    """The closing summary: what was crawled or refused, classes, top targets, files."""
    console.rule("[bold]Summary")
    if result.crawl_reports:
        crawl = Table(title="Sources", title_justify="left")
        for col in ("source", "status", "pages", "kept", "note"):
            crawl.add_column(col, justify="right" if col in ("pages", "kept") else "left")
        for r in result.crawl_reports:
            note = r.reason or ("; ".join(r.flags) if r.flags else "")
            style = "red" if r.status in ("refused", "failed") or r.flags else None
            crawl.add_row(r.source, r.status, str(r.pages), str(r.kept), note, style=style)
        console.print(crawl)
    if result.register is not None:
        reg = result.register
        console.print(f"Register snapshot {reg.snapshot_date or '(no date)'}: "
                      f"{reg.counts.get('units', '?')} units "
                      f"({reg.counts.get('horeca_units', '?')} HoReCa) [{reg.status}]")
    if result.geocode is not None:
        g = result.geocode
        console.print(f"Geocoded: {dict(g.by_precision)}; failed: {g.failed}"
                      + (f" ({dict(g.failures)})" if g.failed else ""))
    counts = _outcome_counts(db)
    places = sum(counts.values())
    classes = Table(title="Places by class", title_justify="left")
    classes.add_column("class")
    classes.add_column("places", justify="right")
    classes.add_column("share", justify="right")
    for outcome in ("match", "doubt", "no-match"):
        n = counts.get(outcome, 0)
        classes.add_row(outcome, str(n), f"{100 * n / places:.1f}%" if places else "-")
    console.print(classes)
    if result.targets:
        top = Table(title="Top targets (pseudonymised where a person is named)",
                    title_justify="left")
        for col in ("#", "class", "name", "address", "priority", "why"):
            top.add_column(col)
        for t in result.targets:
            top.add_row(str(t.rank), t.outcome, t.name or "", t.address,
                        f"{t.priority:.2f}", t.priority_reason)
        console.print(top)
    if result.exports:
        console.print(f"Files in {out_dir}/:")
        for e in result.exports:
            console.print(f"  {Path(e.path).name:<22} {e.rows:>5} rows")
    console.print(f"Done in {seconds:.0f} s.")
    return counts


def run_command(
    ctx: typer.Context,
    region: str = typer.Option(..., "--region", "-r", help="Named region, e.g. brussels."),
    register: list[Path] = typer.Option(
        None, "--register", help="Register to import first: a KBO Open Data zip or folder "
        "(repeat for update files), or a CSV register with --register-mapping. Without it, "
        "the region's active snapshot is used."),
    register_mapping: Path = typer.Option(None, "--register-mapping",
                                          help="Column mapping for a CSV register."),
    sources: Path = typer.Option(Path("sources.toml"), "--sources", envvar="HORECA_SOURCES",
                                 help="Sources config reviewed by a legal reviewer."),
    gazetteer: Path = typer.Option(None, "--gazetteer",
                                   help="Street gazetteer CSV to load before geocoding."),
    online: bool = typer.Option(False, "--online",
                                help="Also geocode online (Nominatim; 1 request/s, cached); "
                                     "needs a user agent in --geocode-config."),
    geocode_config: Path = typer.Option(
        None, "--geocode-config", envvar="HORECA_GEOCODE_CONFIG", metavar="FILE",
        help="TOML with a [geocode] table (provider, user_agent, ...); see docs/geocoding.md."),
    out: Path = typer.Option(Path("out"), "--out", "-o", help="Folder for the exports."),
    formats: str = typer.Option(",".join(EXPORT_FORMATS), "--formats",
                                help="Export formats, comma separated."),
    no_crawl: bool = typer.Option(False, "--no-crawl",
                                  help="Skip crawling; key what the store already holds."),
    proxy: str = typer.Option(None, "--proxy", help="HTTP proxy for crawling."),
    parallel: int = typer.Option(1, "--parallel", min=1,
                                 help="Sources crawled at once (each site still gets one "
                                      "request at a time at its own rate)."),
) -> None:
    """Run the whole chain for one region and print a closing summary.

    Crawls the approved sources, imports the register (when given), geocodes, keys every
    place to the register and writes the no-match and doubt lists, ranked and explained.

    Example:

        horeca run --region brussels --register KboOpenData_0140_2026_11_Full.zip
    """
    app_ctx = AppContext.of(ctx)
    opts = ChainOptions(
        region=resolve_region(region), region_name=region, sources_path=sources, out_dir=out,
        register_paths=list(register) if register else None,
        register_format="csv" if register_mapping else "auto",
        register_mapping=register_mapping, gazetteer_path=gazetteer, online=online,
        geocode_config=geocode_config,
        proxy=proxy, crawl=not no_crawl, parallel=parallel, formats=_formats(formats))
    _run(app_ctx, "run", opts)


def _formats(spec: str) -> tuple[str, ...]:
    from horeca.errors import UserError

    chosen = tuple(f.strip() for f in spec.split(",") if f.strip())
    unknown = [f for f in chosen if f not in EXPORT_FORMATS]
    if unknown or not chosen:
        raise UserError(f"unknown export format {', '.join(unknown) or '(none)'}",
                        path="--formats", fix=f"choose from {', '.join(EXPORT_FORMATS)}")
    return chosen


def _run(app_ctx: AppContext, command: str, opts: ChainOptions) -> tuple[ChainResult, dict]:
    started = time.monotonic()
    args = {"region": opts.region_name, "sources": str(opts.sources_path),
            "register": [str(p) for p in opts.register_paths or []], "out": str(opts.out_dir),
            "online": opts.online, "crawl": opts.crawl}
    with app_ctx.step(command, args) as step:
        result = run_chain(step.db, app_ctx.db_path, opts, run_id=step.run_id,
                           actor=app_ctx.actor, purpose=app_ctx.purpose,
                           notice=_notice(6 if opts.crawl else 5))
        counts = print_summary(step.db, result, opts.out_dir, time.monotonic() - started)
        step.counts = {"places": counts, "refused": [r.source for r in result.refused],
                       "exports": [e.path for e in result.exports]}
    return result, counts


def demo_command(
    ctx: typer.Context,
    out: Path = typer.Option(Path("demo-out"), "--out", "-o",
                             help="Folder for the demo's database and exports."),
) -> None:
    """Run the whole chain on the bundled Brussels demo region, offline.

    Serves the demo's synthetic websites on 127.0.0.1, crawls the approved ones through the
    legal gate (the demo config keeps one source pending and one that reserves TDM rights,
    so you see the gate refuse), imports the demo KBO extract, geocodes with the offline
    gazetteer, keys, exports, and scores the result against the demo's ground truth.

    Example:

        horeca demo --out demo-out
    """
    from horeca.fixtures.server import serve_sites

    app_ctx = AppContext.of(ctx)
    out.mkdir(parents=True, exist_ok=True)
    if not app_ctx.db_explicit:
        app_ctx.db_path = out / "horeca.db"
    with serve_sites(DEMO_ROOT / "sites") as proxy:
        console.print(f"Demo sites served on {proxy} (loopback only).")
        opts = ChainOptions(
            region=resolve_region("brussels"), region_name="brussels",
            sources_path=DEMO_ROOT / "sources.toml", out_dir=out,
            register_paths=[DEMO_ROOT / "kbo"], gazetteer_path=DEMO_ROOT / "gazetteer.csv",
            proxy=proxy, parallel=2)
        _run(app_ctx, "demo", opts)
    _print_demo_evaluation(app_ctx)


def _print_demo_evaluation(app_ctx: AppContext) -> None:
    from horeca.keying.evaluate import evaluate_store, render_report

    report = evaluate_store(app_ctx.db(), DEMO_ROOT / "truth.csv")
    console.rule("[bold]Against the demo's ground truth (evaluation only)")
    console.print(render_report(report))


def register(app: typer.Typer) -> None:
    app.command("run", help=run_command.__doc__)(run_command)
    app.command("demo", help=demo_command.__doc__)(demo_command)
