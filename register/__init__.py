"""Register import: KBO Open Data (full and update extracts) or any CSV register, filtered
to a region while streaming, stored as an atomically replaced snapshot of register units.

Public API:
    import_register(db, ImportRequest(...))  -> ImportResult   (one snapshot per region)
    active_snapshot(db, region)              -> the region's active snapshot row or None
    iter_units(db, snapshot_id)              -> units with names/phones/nace decoded
    list_snapshots(db)                       -> snapshot rows (for status displays)
See docs/register.md.
"""

from horeca.lean_imports import lazy_exports

# Imported on first use: keying reads snapshots without loading the importers.
__getattr__ = lazy_exports(__name__, {
    "horeca.register.importer": ("ImportRequest", "ImportResult", "import_register"),
    "horeca.register.snapshots": ("active_snapshot", "iter_units", "list_snapshots"),
})

__all__ = ["ImportRequest", "ImportResult", "active_snapshot", "import_register", "iter_units",
           "list_snapshots"]
