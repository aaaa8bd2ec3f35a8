"""Progress of long work: a bar on a terminal, plain periodic lines in a log file."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

import click

T = TypeVar("T")


def progress(items: Iterable[T], total: int, label: str, every_s: float = 10.0) -> Iterator[T]:
    """Yield `items`, showing progress on stderr.

    On a terminal: click's progress bar. Otherwise (CTC run scripts, batch jobs): one line
    at the start, then at most one every `every_s` seconds, and one at the end.
    """
    if sys.stderr.isatty():
        with click.progressbar(items, length=total, label=label, file=sys.stderr) as bar:
            yield from bar
        return
    start = last = time.monotonic()
    click.echo(f"{label}: 0/{total}", err=True)
    done = 0
    for item in items:
        yield item
        done += 1
        now = time.monotonic()
        if now - last >= every_s and done < total:
            click.echo(f"{label}: {done}/{total} ({now - start:.0f} s)", err=True)
            last = now
    click.echo(f"{label}: {done}/{total} done in {time.monotonic() - start:.1f} s", err=True)
