"""Ranked, explained exports for inspectors, and the review loop that brings verdicts back.

Public API:

* `export_places(db, kind, fmt, path, *, reveal, actor, purpose, limit)` -> `ExportSummary`
* `top_targets(db, n=10)` -> list of `Target` (for a run's closing summary)
* `import_review(db, path, reviewer, actor, purpose)` -> `ReviewSummary`
* `verdict_overrides(db)` -> {listing id: `Override`}; `apply_verdicts(db)` (after keying)
* `review_labels(db, [(place id, listing ids)])` -> `ReviewLabels` (keying's `Labels`)
* priority: `PriorityWeights`, `load_weights`, `activity_score`, `activity_gap`,
  `priority_score` (pure functions, see `horeca.exports.priority`)
"""

from horeca.lean_imports import lazy_exports

# Imported on first use: keying reads verdicts without loading the exporters.
__getattr__ = lazy_exports(__name__, {
    "horeca.exports.export": ("FORMATS", "KINDS", "ExportSummary", "Target", "build_rows",
                              "export_places", "top_targets"),
    "horeca.exports.priority": ("DEFAULT_WEIGHTS", "PriorityWeights", "activity_gap",
                                "activity_score", "load_weights", "priority_score"),
    "horeca.exports.review": ("ReviewImportError", "ReviewSummary", "import_review"),
    "horeca.exports.verdicts": ("VERDICTS", "Override", "ReviewLabels", "apply_verdicts",
                                "latest_verdicts", "review_labels", "verdict_overrides"),
})

__all__ = [
    "DEFAULT_WEIGHTS", "FORMATS", "KINDS", "VERDICTS", "ExportSummary", "Override",
    "PriorityWeights", "ReviewImportError", "ReviewLabels", "ReviewSummary", "Target",
    "activity_gap", "activity_score", "apply_verdicts", "build_rows", "export_places",
    "import_review", "latest_verdicts", "load_weights", "priority_score", "review_labels",
    "top_targets", "verdict_overrides",
]
