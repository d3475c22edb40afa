"""CLI of the legal gate: `horeca sources ...`, `horeca audit ...`, `horeca purge`."""

from __future__ import annotations

import difflib
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from horeca.context import AppContext, console
from horeca.errors import UserError
from horeca.legal_gate.config import ENV_SOURCES, SourceConfig, load_sources

ENV_PROXY = "HORECA_PROXY"
stdout = Console(highlight=False)

sources_app = typer.Typer(
    help="The sources config: who approved which source, and what its site says now.\n\n"
         "Example:  horeca sources list --sources fixtures/demo/sources.toml",
    no_args_is_help=True)
audit_app = typer.Typer(
    help="The append-only, tamper-evident audit log.\n\nExample:  horeca audit verify",
    no_args_is_help=True)


def _sources_option() -> Path:
    return typer.Option(None, "--sources", envvar=ENV_SOURCES, show_default="sources.toml",
                        help="The sources config (TOML).", metavar="PATH")


def _proxy_option() -> str:
    return typer.Option(None, "--proxy", envvar=ENV_PROXY, metavar="URL",
                        help="HTTP proxy for every request, e.g. the demo's fixture server "
                             "http://127.0.0.1:8899.")


# --------------------------------------------------------------------------- sources


@sources_app.command("list")
def list_cmd(sources_file: Path = _sources_option()) -> None:
    """A status table of every source.

    Example:  horeca sources list --sources fixtures/demo/sources.toml
    """
    config = load_sources(sources_file)
    table = Table(title=f"Sources in {config.path}")
    for column in ("name", "spider", "status", "reviewer", "reviewed on", "retention",
                   "rate"):
        table.add_column(column)
    colour = {"approved": "green", "pending": "yellow", "suspended": "red", "rejected": "red"}
    for s in config:
        status = f"[{colour[s.status]}]{s.status}[/]"
        table.add_row(escape(s.name), s.spider, status, escape(s.reviewer or "-"),
                      s.reviewed_on.isoformat() if s.reviewed_on else "-",
                      f"{s.retention_days} d", f"{s.max_requests_per_second:g}/s")
    stdout.print(table)


def _print_terms(source: SourceConfig, pf) -> bool:
    from horeca.legal_gate.review import load_reviewed_terms

    if not source.terms_url:
        console.print("  terms       [yellow]no terms_url configured[/]")
        return True
    if pf.terms is None or not pf.terms.ok:
        what = pf.terms.describe() if pf.terms else "not fetched"
        console.print(f"  terms       [red]cannot be read[/] ({escape(what)})")
        return True
    now = (pf.terms_sha256 or "")[:16]
    if not source.terms_sha256:
        console.print(f"  terms       not reviewed yet (now {now})")
        return False
    if not pf.terms_changed:
        console.print(f"  terms       unchanged since review on {source.reviewed_on} ({now})")
        return False
    console.print(f"  terms       [red]CHANGED since review on {source.reviewed_on}[/] "
                  f"(reviewed {source.terms_sha256[:16]}, now {now})")
    before = load_reviewed_terms(source.path or ".", source.name, source.terms_sha256)
    if before is None:
        console.print("              (no copy of the reviewed text: read the page again)")
        return True
    diff = list(difflib.unified_diff(before.splitlines(), (pf.terms_text or "").splitlines(),
                                     "reviewed", "now", lineterm="", n=0))
    for line in diff[2:42]:
        style = "red" if line.startswith("-") else "green" if line.startswith("+") else "dim"
        console.print(f"              [{style}]{escape(line)}[/]")
    if len(diff) > 42:
        console.print(f"              ... {len(diff) - 42} more diff lines")
    return True


def _print_check(source: SourceConfig, pf) -> bool:
    """Print one source's findings; return True when something needs a reviewer."""
    from horeca.legal_gate.checks import refusal

    reviewed = f", reviewed {source.reviewed_on} by {source.reviewer}" \
        if source.reviewed_on else ""
    console.print(f"[bold]{escape(source.name)}[/] ({source.status}{escape(reviewed)})")
    attention = _print_terms(source, pf)
    ua = source.effective_user_agent
    for host in pf.hosts.values():
        robots = host.robots
        style = "red" if robots.problem else "green"
        delay = robots.crawl_delay(ua)
        extra = f", Crawl-delay {delay:g} s" if delay else ""
        if robots.ignored_lines:
            extra += f", ignored unreadable lines {list(robots.ignored_lines)[:5]}"
        console.print(f"  robots.txt  {host.host}: [{style}]{escape(robots.reason)}[/]"
                      f"{escape(extra)}")
        if robots.problem:
            console.print("              nothing else is fetched from this host")
            attention = True
            continue
        if host.tdmrep_error:
            console.print(f"  tdmrep.json {host.host}: [red]{escape(host.tdmrep_error)}[/]")
            attention = True
        elif host.tdmrep_rules is None:
            console.print(f"  tdmrep.json {host.host}: none (HTTP {host.tdmrep_status})")
        else:
            rules = "; ".join(f"{r.location} -> {'reserved' if r.reserved else 'not reserved'}"
                              for r in host.tdmrep_rules) or "empty"
            console.print(f"  tdmrep.json {host.host}: {escape(rules)}")
    for page in pf.start_pages:
        if not page.allowed_by_robots:
            console.print(f"  start page  {escape(page.url)}: [yellow]disallowed by "
                          "robots.txt[/] (not fetched)")
            continue
        status = f"HTTP {page.status}" if page.status else f"unreachable ({page.error})"
        tdm = (f"[red]TDM rights reserved[/] by {escape(page.decision.detail)}"
               if page.decision.reserved else "TDM not reserved")
        console.print(f"  start page  {escape(page.url)}: {escape(status)}, {tdm}")
        attention |= page.decision.reserved
    refused = refusal(pf)
    if refused is None:
        console.print("  verdict     [green]a crawl may start[/]")
    else:
        console.print(f"  verdict     [yellow]a crawl would be refused[/]: "
                      f"{escape(refused.bare_message.split(': ', 1)[-1])}")
        attention |= refused.reason != "not_approved"
    return attention


@sources_app.command("check")
def check_cmd(
    name: str = typer.Argument(None, help="One source (default: all)."),
    sources_file: Path = _sources_option(),
    proxy: str = _proxy_option(),
    timeout: float = typer.Option(15.0, "--timeout", help="Seconds per request."),
) -> None:
    """Fetch robots.txt, /.well-known/tdmrep.json, the start pages and the terms page, and
    report what changed since review. Exits 1 when something needs a reviewer (a source
    only waiting for approval does not count).

    Example:  horeca sources check gustoreviews --proxy http://127.0.0.1:8899
    """
    from horeca.legal_gate.checks import inspect_source

    config = load_sources(sources_file)
    chosen = [config.get(name)] if name else list(config)
    attention = False
    for source in chosen:
        pf = inspect_source(source, proxy=proxy, timeout=timeout, require_approved=False)
        attention |= _print_check(source, pf)
    if attention:
        raise typer.Exit(1)


@sources_app.command("approve")
def approve_cmd(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The source to approve."),
    reviewer: str = typer.Option(..., "--reviewer", help="Who reviewed it (recorded)."),
    basis: str = typer.Option(..., "--basis", help="Legal basis, e.g. \"GDPR Art. 6(1)(e); "
                              "<national law, article>\"."),
    source_purpose: str = typer.Option(None, "--purpose", help="The source's purpose, "
                                       "written into its entry."),
    sources_file: Path = _sources_option(),
    proxy: str = _proxy_option(),
    timeout: float = typer.Option(15.0, "--timeout", help="Seconds per request."),
) -> None:
    """Approve a source: fetch its terms page now and write reviewer, today's date, legal
    basis, the terms hash and status = "approved" into the sources file (comments and
    layout kept). Audited. Warns when the site reserves TDM rights or its robots.txt fails
    closed: the gate will still refuse such crawls.

    Example:  horeca sources approve gustoreviews --reviewer "A. Jansen"
    --basis "GDPR Art. 6(1)(e); Social Criminal Code art. 23"
    """
    from horeca.legal_gate import audit
    from horeca.legal_gate.checks import inspect_source, refusal, sync_source_row
    from horeca.legal_gate.review import approve_source, save_reviewed_terms
    from horeca.store import transaction

    app_ctx = AppContext.of(ctx)
    config = load_sources(sources_file)
    source = config.get(name)
    if not source.terms_url:
        raise UserError(f"source {name!r} has no terms_url, so its terms cannot be hashed",
                        path=config.path, line=source.line,
                        fix="add terms_url = \"https://.../terms\" to its table")
    pf = inspect_source(source, proxy=proxy, timeout=timeout, require_approved=False)
    if pf.terms is None or not pf.terms.ok or not pf.terms_sha256:
        what = pf.terms.describe() if pf.terms else "not fetched"
        raise UserError(f"cannot read the terms page {source.terms_url} ({what})",
                        fix="check terms_url and the network (or --proxy), then retry")
    args = {"source": name, "reviewer": reviewer, "basis": basis,
            "sources_file": str(config.path), "terms_sha256": pf.terms_sha256}
    with app_ctx.step("sources approve", args) as step:
        approved = approve_source(config.path, name, reviewer=reviewer, legal_basis=basis,
                                  terms_sha256=pf.terms_sha256, purpose=source_purpose)
        save_reviewed_terms(config.path, name, pf.terms_sha256, pf.terms_text or "")
        with transaction(step.db):
            sync_source_row(step.db, approved)
            audit.record(step.db, "approve", actor=app_ctx.actor, source=name,
                         target=str(config.path), rows=1, purpose=app_ctx.purpose,
                         details={"reviewer": reviewer, "legal_basis": basis,
                                  "terms_sha256": pf.terms_sha256,
                                  "previous_status": source.status,
                                  "source_purpose": approved.purpose})
        step.counts = {"approved": 1}
    console.print(f"approved {name} (reviewer {escape(reviewer)}, {approved.reviewed_on}, "
                  f"terms {pf.terms_sha256[:16]}) in {config.path}")
    pf.source = approved
    refused = refusal(pf)
    if refused is not None:
        console.print(f"[yellow]warning[/]: a crawl would still be refused: "
                      f"{escape(refused.bare_message.split(': ', 1)[-1])}")


@sources_app.command("suspend")
def suspend_cmd(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The source to suspend."),
    reason: str = typer.Option(..., "--reason", help="Why (recorded in the file and log)."),
    sources_file: Path = _sources_option(),
) -> None:
    """Suspend a source: status = "suspended" with the reason and date; the gate refuses
    its crawls until it is approved again. Audited.

    Example:  horeca sources suspend tablebook --reason "platform objected, under review"
    """
    from horeca.legal_gate import audit
    from horeca.legal_gate.checks import sync_source_row
    from horeca.legal_gate.review import suspend_source
    from horeca.store import transaction

    app_ctx = AppContext.of(ctx)
    config = load_sources(sources_file)
    previous = config.get(name)
    with app_ctx.step("sources suspend", {"source": name, "reason": reason}) as step:
        suspended = suspend_source(config.path, name, reason=reason)
        with transaction(step.db):
            sync_source_row(step.db, suspended)
            audit.record(step.db, "suspend", actor=app_ctx.actor, source=name,
                         target=str(config.path), rows=1, purpose=app_ctx.purpose,
                         details={"reason": reason, "previous_status": previous.status})
        step.counts = {"suspended": 1}
    console.print(f"suspended {name}: {escape(reason)}")


# --------------------------------------------------------------------------- audit


@audit_app.command("show")
def audit_show_cmd(
    ctx: typer.Context,
    limit: int = typer.Option(20, "--limit", min=1, help="Newest N entries."),
    action: str = typer.Option(None, "--action", help="Only this action, e.g. crawl_refused."),
    source: str = typer.Option(None, "--source", help="Only this source."),
) -> None:
    """The newest audit entries: who did what, to which data, when, and why.

    Example:  horeca audit show --action crawl_refused --limit 5
    """
    from horeca.legal_gate.audit import ACTIONS, entries
    from horeca.store import open_db

    if action and action not in ACTIONS:
        raise UserError(f"unknown action {action!r}", path="--action",
                        fix="one of " + ", ".join(sorted(ACTIONS)))
    db = open_db(AppContext.of(ctx).db_path, create=False)
    rows = entries(db, limit=limit, action=action, source=source)
    if not rows:
        console.print("no audit entries" + (" for this filter" if action or source else ""))
    for row in rows:
        where = "  ".join(f"{k}={row[k]}" for k in ("source", "target", "rows")
                          if row[k] not in (None, ""))
        stdout.print(f"[bold]#{row['id']}[/]  {row['ts']}  {escape(row['actor'])}  "
                     f"[cyan]{row['action']}[/]  {escape(where)}", soft_wrap=True)
        stdout.print(f"      purpose: {escape(row['purpose'] or '-')}", soft_wrap=True)
        if row["details"] and row["details"] != "{}":
            stdout.print(f"      details: {escape(row['details'])}", soft_wrap=True)


@audit_app.command("verify")
def audit_verify_cmd(
    ctx: typer.Context,
    anchor: str = typer.Option(
        None, "--anchor", metavar="HASH",
        help="A head hash printed by an earlier `audit verify` and kept outside the "
             "database (at least 16 characters): also detects a log cut back after it."),
) -> None:
    """Check the hash chain: exits 1 naming the first edited, inserted or deleted entry.

    Keep the printed head hash outside the database (a ticket, a signed mail) and pass it
    back later with --anchor: that also detects newest entries being cut off, which a
    chain alone cannot show.

    Example:  horeca audit verify --anchor 3f9a1c0d5e7b2a44
    """
    from horeca.legal_gate.audit import MIN_ANCHOR_CHARS, check_anchor, head, verify
    from horeca.store import open_db

    if anchor is not None and (len(anchor.strip()) < MIN_ANCHOR_CHARS
                               or any(c not in "0123456789abcdef" for c in anchor.strip().lower())):
        raise UserError(f"--anchor {anchor!r} is not a head hash", path="--anchor",
                        fix=f"give at least {MIN_ANCHOR_CHARS} hex characters of the head hash "
                            "printed by `horeca audit verify`")
    db = open_db(AppContext.of(ctx).db_path, create=False)
    found = verify(db)
    if found is None and anchor is not None:
        found = check_anchor(db, anchor)
    if found is not None:
        console.print(f"[bold red]audit log broken at entry {found.entry_id}[/]: "
                      f"{found.problem}")
        raise typer.Exit(1)
    count, newest = head(db)
    console.print(f"audit log intact: {count} entries"
                  + (", anchor found" if anchor else ""))
    stdout.print(f"head {newest or '-'}", soft_wrap=True)
    console.print("keep this head hash outside the database and pass it back with --anchor "
                  "to detect a log cut back later")


# --------------------------------------------------------------------------- purge


def purge_cmd(
    ctx: typer.Context,
    dry_run: bool = typer.Option(False, "--dry-run", help="Count what would go; change "
                                 "nothing (and write no audit entry)."),
    sources_file: Path = _sources_option(),
) -> None:
    """Delete listings older than their source's retention_days (by last seen), with their
    geocodes, and the places and keying results built from them. Audited per source.

    Example:  horeca purge --dry-run --sources fixtures/demo/sources.toml
    """
    from horeca.legal_gate.purge import purge

    app_ctx = AppContext.of(ctx)
    config = load_sources(sources_file)
    with app_ctx.step("purge", {"dry_run": dry_run, "sources_file": str(config.path)}) as step:
        results = purge(step.db, config, dry_run, actor=app_ctx.actor,
                        purpose=app_ctx.purpose)
        step.counts = {r.source: r.listings for r in results}
    verb = "would delete" if dry_run else "deleted"
    table = Table(title=f"Purge ({'dry run' if dry_run else 'done'})")
    for column in ("source", "retention", "older than", "listings", "geocodes", "places",
                   "keying results"):
        table.add_column(column)
    for r in results:
        table.add_row(escape(r.source), f"{r.retention_days} d", r.cutoff, str(r.listings),
                      str(r.entity_geocodes), str(r.places), str(r.keying_results))
    console.print(table)
    console.print(f"{verb} {sum(r.listings for r in results)} listings")


def register(app: typer.Typer) -> None:
    """Add this component's commands to the root app."""
    app.add_typer(sources_app, name="sources")
    app.add_typer(audit_app, name="audit")
    app.command("purge")(purge_cmd)
