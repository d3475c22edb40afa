"""Progress reporting for long imports: silent in the library, rich bars on the CLI."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class Reporter:
    """No output. Subclasses show progress; the import code only calls these hooks."""

    @contextmanager
    def stream(self, label: str, total_bytes: int) -> Iterator[Callable[[int], None]]:
        """While a file is read: the callable receives each block's size in bytes."""
        yield lambda n: None

    @contextmanager
    def counting(self, label: str, total: int | None) -> Iterator[Callable[[int], None]]:
        """While rows are produced: the callable receives how many were just done."""
        yield lambda n: None

    def note(self, text: str) -> None:
        """A one-line remark between phases."""


class RichReporter(Reporter):
    def __init__(self, console: Console) -> None:
        self.console = console

    def _progress(self, *columns) -> Progress:
        return Progress(TextColumn("{task.description}"), BarColumn(), *columns,
                        TimeElapsedColumn(), TimeRemainingColumn(), console=self.console,
                        transient=False)

    @contextmanager
    def stream(self, label: str, total_bytes: int) -> Iterator[Callable[[int], None]]:
        with self._progress(DownloadColumn()) as progress:
            task = progress.add_task(f"reading {label}", total=total_bytes or None)
            yield lambda n: progress.advance(task, n)
            progress.update(task, completed=total_bytes)

    @contextmanager
    def counting(self, label: str, total: int | None) -> Iterator[Callable[[int], None]]:
        with self._progress(MofNCompleteColumn()) as progress:
            task = progress.add_task(label, total=total)
            yield lambda n: progress.advance(task, n)

    def note(self, text: str) -> None:
        self.console.print(text)
