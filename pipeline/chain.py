"""The whole chain for one region: crawl -> register -> gazetteer -> geocode -> key -> export.

`run_chain` calls each component's library entry point in data-flow order and collects
what the closing summary needs. It owns no logic of its own beyond ordering and skipping:
a stage whose input is missing (no register given and none imported yet) stops the chain
with a clear error rather than keying against nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils

from horeca.errors import UserError
from horeca.region import Region

EXPORT_KINDS = ("no-match", "doubt")
EXPORT_FORMATS = ("csv", "xlsx", "geojson", "html")


@dataclass
class ChainOptions:
    region: Region
    region_name: str
    sources_path: Path
    out_dir: Path
    register_paths: list[Path] | None = None      # None: key against the active snapshot
    register_format: str = "auto"
    register_mapping: Path | None = None
    gazetteer_path: Path | None = None            # a street gazetteer to load first
    online: bool = False
    geocode_config: Path | None = None            # [geocode] table: provider, user agent
    proxy: str | None = None
    throttle: bool = True
    parallel: int = 1                             # sources crawled at once (distinct sites)
    crawl: bool = True
    reveal: bool = False
    formats: tuple[str, ...] = EXPORT_FORMATS
    kinds: tuple[str, ...] = EXPORT_KINDS
    keying_config: Path | None = None


@dataclass
class ChainResult:
    crawl_reports: list[Any] = field(default_factory=list)
    register: Any = None
    gazetteer: Any = None
    geocode: Any = None
    keying: Any = None
    exports: list[Any] = field(default_factory=list)
    targets: list[Any] = field(default_factory=list)

    @property
    def refused(self) -> list[Any]:
        return [r for r in self.crawl_reports if r.status == "refused"]


StageNotice = Callable[[str], None]


def run_chain(db: sqlite_utils.Database, db_path: Path, opts: ChainOptions, *, run_id: int,
              actor: str, purpose: str, notice: StageNotice = lambda _: None,
              progress: Any = None) -> ChainResult:
    # Imports are local so `horeca --help` stays fast and one broken stage cannot stop
    # the others' commands from loading.
    from horeca.exports.export import export_places, top_targets
    from horeca.geocode.config import load_config as load_geocode_config
    from horeca.geocode.loaders import import_segments
    from horeca.geocode.run import geocode_pending
    from horeca.keying.engine import key_region
    from horeca.register.importer import ImportRequest, import_register
    from horeca.register.snapshots import active_snapshot
    from horeca.spiders.runner import crawl_sources

    result = ChainResult()
    if opts.crawl:
        notice("crawl: approved sources, through the legal gate")
        result.crawl_reports = crawl_sources(
            db_path, opts.sources_path, None, opts.region, opts.proxy, run_id=run_id,
            actor=actor, purpose=purpose, throttle=opts.throttle, parallel=opts.parallel)

    if opts.register_paths:
        notice("register: importing " + ", ".join(str(p) for p in opts.register_paths))
        result.register = import_register(
            db, ImportRequest(paths=opts.register_paths, region=opts.region,
                              region_key=opts.region_name, fmt=opts.register_format,
                              mapping=opts.register_mapping),
            run_id=run_id, actor=actor, purpose=purpose)
    elif active_snapshot(db, opts.region_name) is None:
        raise UserError(f"no register imported for region {opts.region_name!r}",
                        path="--register",
                        fix="pass --register PATH (a KBO Open Data zip/folder or a CSV "
                            "register), or run `horeca register import` first")

    if opts.gazetteer_path:
        notice(f"gazetteer: loading {opts.gazetteer_path}")
        result.gazetteer = import_segments(db, opts.gazetteer_path, run_id=run_id,
                                           actor=actor, purpose=purpose)

    notice("geocode: cache, offline gazetteer" + (", online" if opts.online else ""))
    result.geocode = geocode_pending(db, opts.region, online=opts.online,
                                     config=load_geocode_config(opts.geocode_config),
                                     actor=actor, purpose=purpose, progress=progress)

    notice("key: consolidate, block, compare, score, assign")
    result.keying = key_region(db, region_key=opts.region_name, region=opts.region,
                               config_path=opts.keying_config, run_id=run_id, actor=actor,
                               purpose=purpose)

    opts.out_dir.mkdir(parents=True, exist_ok=True)
    notice(f"export: {', '.join(opts.kinds)} as {', '.join(opts.formats)}")
    for kind in opts.kinds:
        for fmt in opts.formats:
            path = opts.out_dir / f"{kind}.{fmt}"
            result.exports.append(export_places(db, kind, fmt, path, reveal=opts.reveal,
                                                actor=actor, purpose=purpose))
    result.targets = top_targets(db, n=10)
    return result
