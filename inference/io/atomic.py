"""Files and result folders that appear whole or not at all, never overwritten by accident."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from inference.errors import CTCError


def refuse_to_overwrite(path: str | Path, overwrite: bool) -> None:
    """CTCError if `path` exists and `overwrite` was not given."""
    if Path(path).exists() and not overwrite:
        raise CTCError("already exists; pass --overwrite to replace it", path)


@contextmanager
def atomic_output_dir(final: str | Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling folder to write into; move it to `final` only on success.

    On any error the temporary folder is removed and an existing `final` is left untouched.
    An existing `final` is replaced only with `overwrite`.
    """
    final = Path(final)
    refuse_to_overwrite(final, overwrite)
    final.parent.mkdir(parents=True, exist_ok=True)
    tag = uuid.uuid4().hex[:8]
    tmp = final.with_name(f".{final.name}.tmp-{tag}")
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = final.with_name(f".{final.name}.old-{tag}")
    if final.exists():
        os.replace(final, old)
    try:
        os.replace(tmp, final)
    except BaseException:
        if old.exists():
            os.replace(old, final)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)


def atomic_file(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Run `write` on a temporary sibling of `path` (same suffix, so writers that go by it
    still do), then rename it to `path`: readers never see a half-written file."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.part{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
