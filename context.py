"""What every command shares: database path, analyst, purpose, and the run record.

Library functions take plain arguments (a `sqlite_utils.Database`, paths, records); only
the CLI layer builds an `AppContext`. `AppContext.step` wraps one command: it opens the
store, records a `runs` row, and closes it as ok, failed or interrupted.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils
import typer
from rich.console import Console

from horeca.store import open_db, resolve_db_path
from horeca.store.runs import finish_run, os_user, start_run

ENV_ANALYST = "HORECA_ANALYST"
ENV_PURPOSE = "HORECA_PURPOSE"
DEFAULT_PURPOSE = "targeting labour and social-security inspections of HoReCa businesses"

# Progress and summaries go to stderr so stdout stays clean for data (--json, exports to -).
console = Console(stderr=True, highlight=False)


@dataclass
class Step:
    """One running command: its run id and the counts it will report."""

    run_id: int
    db: sqlite_utils.Database
    counts: dict[str, Any] = field(default_factory=dict)


@dataclass
class AppContext:
    db_path: Path
    analyst: str | None = None
    purpose: str = DEFAULT_PURPOSE
    db_explicit: bool = False  # --db or $HORECA_DB given: commands must not pick their own
    _db: sqlite_utils.Database | None = field(default=None, repr=False)

    @classmethod
    def of(cls, ctx: typer.Context) -> AppContext:
        root = ctx.find_root()
        if not isinstance(root.obj, AppContext):
            root.obj = AppContext(db_path=resolve_db_path(None),
                                  analyst=os.environ.get(ENV_ANALYST),
                                  purpose=os.environ.get(ENV_PURPOSE) or DEFAULT_PURPOSE)
        return root.obj

    @property
    def actor(self) -> str:
        """Who is acting, for the audit log: the named analyst, else the OS user."""
        return self.analyst or os_user()

    def db(self) -> sqlite_utils.Database:
        if self._db is None:
            self._db = open_db(self.db_path)
        return self._db

    @contextmanager
    def step(self, command: str, args: dict[str, Any]) -> Iterator[Step]:
        db = self.db()
        run_id = start_run(db, command, args, analyst=self.analyst, purpose=self.purpose)
        step = Step(run_id=run_id, db=db)
        try:
            yield step
        except KeyboardInterrupt:
            finish_run(db, run_id, "interrupted", step.counts, "interrupted by the user")
            raise
        except BaseException as err:
            finish_run(db, run_id, "failed", step.counts, str(err)[:2000])
            raise
        finish_run(db, run_id, "ok", step.counts)
