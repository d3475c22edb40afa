"""CLI: `horeca register import PATH...`, `horeca register status` and
`horeca register index`."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import sqlite_utils
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from horeca.context import AppContext, console
from horeca.errors import UserError
from horeca.region import resolve_region
from horeca.register.importer import (
    ImportRequest,
    ImportResult,
    import_register,
    parse_nace_prefixes,
    region_key,
)
from horeca.register.progress import RichReporter
from horeca.register.snapshots import list_snapshots

register_app = typer.Typer(
    name="register", no_args_is_help=True,
    help="The enterprise register: import KBO Open Data or any CSV register as a region "
         "snapshot, and show the snapshots held.")


@register_app.command("import")
def import_command(
    ctx: typer.Context,
    paths: list[Path] = typer.Argument(
        ..., metavar="PATH...",
        help="A KBO Open Data zip or folder (full extract, optionally followed by update "
             "extracts in order), or one CSV file with --mapping."),
    region: str = typer.Option(None, "--region", help="Named region, e.g. brussels."),
    postcodes: str = typer.Option(None, "--postcodes", metavar="LIST",
                                  help="Postcodes instead of (or narrowing) --region, "
                                       "e.g. 1000,1040-1050."),
    regions_file: Path = typer.Option(None, "--regions", metavar="TOML",
                                      help="Extra region definitions."),
    nace: str = typer.Option(None, "--nace", metavar="PREFIXES",
                             help="Keep only units with a NACE code starting so, e.g. 55,56 "
                                  "(default: every unit, HoReCa ones flagged)."),
    fmt: str = typer.Option("auto", "--format", metavar="FORMAT",
                            help="auto | kbo | csv (auto recognises a KBO extract)."),
    mapping: Path = typer.Option(None, "--mapping", metavar="TOML",
                                 help="Column mapping of a generic CSV register."),
    strict: bool = typer.Option(False, "--strict",
                                help="Stop at the first bad row instead of skipping it."),
    default_country: str = typer.Option(None, "--default-country", metavar="CC",
                                        help="Country for phones and addresses written "
                                             "without one (default BE, or the mapping's)."),
    encoding: str = typer.Option(None, "--encoding",
                                 help="Text encoding of the files (default utf-8)."),
    delimiter: str = typer.Option(None, "--delimiter",
                                  help="Field separator (default ',' for KBO)."),
    declared: Path = typer.Option(None, "--declared", metavar="CSV",
                                  help="Declared activity per enterprise or unit "
                                       "(columns number, workers, turnover)."),
    tmp_dir: Path = typer.Option(None, "--tmp-dir", metavar="DIR",
                                 help="Where the temporary staging database goes (default: "
                                      "the system temp folder)."),
    force: bool = typer.Option(False, "--force",
                               help="Rebuild even if this exact extract is already active."),
) -> None:
    """Import a register extract as the region's snapshot, replacing the old one atomically.

    KBO Open Data: units at establishment level (enterprises without a unit through their
    seat) with every name of the unit and its enterprise, FR+NL addresses, the seat,
    phones (E.164), websites, e-mails, NACE codes and a HoReCa flag. Rows are filtered
    while streaming, so a national extract imports one region in minutes. The old
    snapshot stays in use until the new one is complete.

    Examples:

      horeca register import KboOpenData_0140_2025_03_Full.zip --region brussels

      horeca register import full.zip update_0141.zip --postcodes 1000,1040-1050 --nace 55,56

      horeca register import municipal.csv --format csv --mapping mapping.toml --region brussels
    """
    app_ctx = AppContext.of(ctx)
    chosen = resolve_region(region, postcodes=postcodes, regions_file=regions_file) \
        if (region or postcodes) else None
    request = ImportRequest(
        paths=list(paths), region=chosen, region_key=region_key(chosen, region, postcodes),
        nace=parse_nace_prefixes(nace), fmt=fmt, mapping=mapping, strict=strict,
        default_country=default_country.upper() if default_country else None,
        encoding=encoding, delimiter=_unescape(delimiter), declared=declared,
        workdir=tmp_dir, force=force)
    args = {"paths": [str(p) for p in paths], "region": region, "postcodes": postcodes,
            "nace": nace, "format": fmt, "mapping": str(mapping) if mapping else None,
            "strict": strict, "default_country": default_country, "encoding": encoding,
            "delimiter": delimiter, "declared": str(declared) if declared else None,
            "force": force}
    with app_ctx.step("register import", args) as step:
        result = import_register(step.db, request, run_id=step.run_id, actor=app_ctx.actor,
                                 purpose=app_ctx.purpose, reporter=RichReporter(console))
        step.counts = {k: v for k, v in result.counts.items() if k != "skipped"}
        step.counts["skipped"] = result.issues.total
        step.counts["snapshot_id"] = result.snapshot_id
        started = time.perf_counter()
        # keyed as `horeca key` will read it: by default the keying config's country
        indexed = _index_for_keying(step.db, result.snapshot_id,
                                    request.default_country or _keying_country(None))
        step.counts["indexed_for_keying"] = indexed
    print_summary(result)
    if indexed:
        console.print(f"  indexed {indexed} units for keying in "
                      f"{time.perf_counter() - started:.1f} s", markup=False, soft_wrap=True)


def _unescape(delimiter: str | None) -> str | None:
    if delimiter in ("\\t", "tab", "TAB"):
        return "\t"
    return delimiter


def print_summary(result: ImportResult) -> None:
    c = result.counts
    date = result.snapshot_date or "unknown date"
    extract = f", extract {result.extract_number}" if result.extract_number else ""
    if result.status == "unchanged":
        console.print(f"register snapshot {result.snapshot_id} for {result.region} already "
                      f"holds this extract ({date}{extract}); nothing to do "
                      "(--force rebuilds it)", markup=False, soft_wrap=True)
        return
    console.print(
        f"register snapshot {result.snapshot_id} for {result.region} ({result.fmt}, "
        f"{date}{extract}) is now active: {c.get('units', 0)} units, "
        f"{c.get('horeca_units', 0)} HoReCa", markup=False, soft_wrap=True)
    by_type = [f"{c[k]} {label}" for k, label in (
        ("establishment_units", "establishment units"), ("seat_only_units", "seat-only"),
        ("natural_person_units", "natural persons"),
        ("units_without_address", "without address"),
        ("units_outside_nace_filter", "left out by --nace"),
        ("outside_nace_filter", "left out by --nace"),
        ("outside_region", "outside the region"),
        ("enterprises_without_address", "enterprises without any address (not kept)"))
        if c.get(k)]
    if by_type:
        console.print("  " + ", ".join(by_type), markup=False, soft_wrap=True)
    unusable = c.get("contacts_unusable") or {}
    if any(unusable.values()):
        console.print("  contacts not usable (dropped): " + ", ".join(
            f"{n} {kind}" for kind, n in unusable.items() if n), markup=False, soft_wrap=True)
    if result.superseded:
        console.print(f"  replaced snapshot {', '.join(map(str, result.superseded))}",
                      markup=False, soft_wrap=True)
    for reason, info in result.issues.as_dict().items():
        console.print(f"  skipped {info['count']} rows: {reason.replace('_', ' ')}",
                      markup=False, soft_wrap=True)
        for example in info["examples"]:
            console.print(f"    {example}", markup=False, soft_wrap=True)
    console.print(f"  done in {result.seconds:.1f} s", markup=False, soft_wrap=True)


@register_app.command("status")
def status_command(
    ctx: typer.Context,
    region: str = typer.Option(None, "--region", help="Only this region's snapshots."),
    history: bool = typer.Option(False, "--history",
                                 help="Also superseded and failed snapshots."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON on standard output."),
) -> None:
    """Show the register snapshots held: region, extract date, units, status.

    Example:  horeca register status --history
    """
    app_ctx = AppContext.of(ctx)
    rows = list_snapshots(app_ctx.db(), region, include_history=history)
    if as_json:
        typer.echo(json.dumps(rows, indent=2, default=str))
        return
    if not rows:
        console.print("no register snapshot yet: run `horeca register import PATH "
                      "--region R`", markup=False, soft_wrap=True)
        return
    table = Table("id", "region", "status", "format", "snapshot date", "extract", "units",
                  "HoReCa", "imported at", "source")
    for row in rows:
        counts = row.get("counts") or {}
        table.add_row(str(row["id"]), row["region"], row["status"], row["format"] or "",
                      row.get("snapshot_date") or "", row.get("extract_number") or "",
                      str(counts.get("units", "")), str(counts.get("horeca_units", "")),
                      row.get("imported_at") or "", Path(row.get("source_path") or "").name)
    console.print(table)


@register_app.command("index")
def index_command(
    ctx: typer.Context,
    region: str = typer.Option(None, "--region",
                               help="The region whose active snapshot to index (default: "
                                    "every active snapshot)."),
    config_path: Path = typer.Option(None, "--config", metavar="FILE",
                                     help="Keying config (TOML): its country decides how "
                                          "postcodes and phones read."),
    rebuild: bool = typer.Option(False, "--rebuild",
                                 help="Index again even if the snapshot already is."),
) -> None:
    """Index the active register snapshot for keying: every unit's blocking keys (name
    words, streets and doors, phones, domains, numbers), written once so that each
    `horeca key` run looks them up instead of normalising the whole register again.

    `register import` indexes the snapshot it imports, and `horeca key` indexes one that
    is not (yet) indexed; run this after an upgrade of horeca, or to re-index on purpose.

    Examples:

      horeca register index --region brussels

      horeca register index --rebuild
    """
    app_ctx = AppContext.of(ctx)
    country = _keying_country(config_path)
    with app_ctx.step("register index", {"region": region, "rebuild": rebuild}) as step:
        snapshots = [row for row in list_snapshots(step.db, region) if row["status"] == "active"]
        if not snapshots:
            raise UserError(f"no active register snapshot{f' for {region!r}' if region else ''}",
                            path="--region", fix="run `horeca register import PATH` first")
        for row in snapshots:
            started = time.perf_counter()
            n = _index_for_keying(step.db, row["id"], country, rebuild=rebuild)
            step.counts[f"snapshot {row['id']}"] = n
            console.print(f"snapshot {row['id']} ({row['region']}): " + (
                f"indexed {n} units in {time.perf_counter() - started:.1f} s" if n else
                "already indexed"), markup=False, soft_wrap=True)


def _keying_country(config_path: Path | None) -> str:
    from horeca.keying.config import load_config

    return load_config(config_path).country


def _index_for_keying(db: sqlite_utils.Database, snapshot_id: int, country: str = "BE", *,
                      rebuild: bool = False) -> int:
    """Keying's index of a snapshot (keying/register_keys.py), with a progress bar;
    returns the units indexed now (0 when it already was)."""
    from horeca.keying.register_keys import build_unit_keys, ensure_unit_keys

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task("indexing for keying", total=None)

        def progress(_stage: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        build = build_unit_keys if rebuild else ensure_unit_keys
        return build(db, snapshot_id, country, workers=os.cpu_count() or 1, progress=progress)


def register(app: typer.Typer) -> None:
    """Add this component's commands to the root app."""
    app.add_typer(register_app, name="register")
