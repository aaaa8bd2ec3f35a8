"""Files and result folders that appear whole or not at all, never overwritten by accident.

A result folder is written into a hidden temporary sibling (`.NAME.tmp-XXXXXXXX`) and renamed
into place when complete. While it is written, the run holds an exclusive lock on
`.NAME.lock` beside it (`fcntl.flock`, released by the kernel when the process dies, however
it dies), so:

- a second run on the same output refuses at once with one line instead of racing the first;
- temporary folders found by a run that holds the lock belong to a run that is gone (killed
  with SIGKILL, out of memory): they are removed, and a result stranded between the two
  renames (`.NAME.old-*`, with no NAME) is put back.
"""

from __future__ import annotations

import errno
import fcntl
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


def check_writable(path: str | Path) -> None:
    """CTCError, before anything is written, if `path` cannot be created: a file stands
    where a folder above it must be, or the nearest existing folder is read-only."""
    path = Path(path)
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        if ancestor.is_symlink():  # a dangling link: mkdir would fail on it
            raise CTCError(f"cannot write here: {ancestor} is a broken link", path)
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise CTCError(f"cannot write here: {ancestor} is a file, not a folder", path)
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise CTCError(f"cannot write here: {ancestor} is read-only (no write permission)", path)


def make_parent(path: str | Path) -> None:
    """Create the folders above `path`; any failure is a CTCError naming it."""
    path = Path(path)
    check_writable(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CTCError(f"cannot create its folder ({exc.strerror or exc})", path) from exc


#: Outputs whose lock this process holds, with how many blocks hold it (re-entrant).
_HELD: dict[str, int] = {}


@contextmanager
def output_lock(final: str | Path) -> Iterator[None]:
    """Hold the exclusive lock of output `final` (`.NAME.lock` beside it) for the block.

    CTCError at once if another process holds it. Re-entrant within a process (the CLI
    takes it before any work, the writer again). The lock file is removed on leaving; one
    left by a killed process is simply taken over (a flock dies with its owner).
    """
    final = Path(final)
    key = os.path.abspath(final)
    if key in _HELD:
        _HELD[key] += 1
        try:
            yield
        finally:
            _HELD[key] -= 1
        return
    lock = final.with_name(f".{final.name}.lock")
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise CTCError(f"cannot create the lock {lock.name} ({exc.strerror})", final) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            owner = _read_pid(fd)
            os.close(fd)
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise CTCError(f"cannot lock {lock.name} ({exc.strerror})", final) from exc
            raise CTCError(
                f"another gnntrack run{owner} is writing this output now; wait for it to "
                "finish or choose another output",
                final,
            ) from None
        try:  # the file may have been removed by its previous owner in between: lock anew
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    _HELD[key] = 1
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        del _HELD[key]
        lock.unlink(missing_ok=True)  # while still holding it: the next owner makes a new one
        os.close(fd)


def _read_pid(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode().strip()
    except OSError:
        return ""
    return f" (pid {text})" if text.isdigit() else ""


def remove_stale(final: Path) -> None:
    """Remove what runs that died left beside `final` (call only while holding its lock):
    temporary folders, and a previous result moved aside (put back when `final` is gone)."""
    for tmp in final.parent.glob(f".{_glob_escape(final.name)}.tmp-*"):
        shutil.rmtree(tmp, ignore_errors=True)
    for old in final.parent.glob(f".{_glob_escape(final.name)}.old-*"):
        if old.is_dir() and not final.exists():
            os.replace(old, final)
        else:
            shutil.rmtree(old, ignore_errors=True)


def _glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[]" else c for c in name)


@contextmanager
def atomic_output_dir(final: str | Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling folder to write into; move it to `final` only on success.

    On any error or interruption (Ctrl-C; SIGTERM, which the CLI turns into an exception)
    the temporary folder is removed and an existing `final` is left untouched. An existing
    `final` is replaced only with `overwrite`. The output is locked meanwhile (see above).
    """
    final = Path(final)
    refuse_to_overwrite(final, overwrite)
    make_parent(final)
    with output_lock(final):
        remove_stale(final)
        refuse_to_overwrite(final, overwrite)  # a run that just finished may have made it
        tag = uuid.uuid4().hex[:8]
        tmp = final.with_name(f".{final.name}.tmp-{tag}")
        try:
            tmp.mkdir()
        except OSError as exc:
            raise CTCError(f"cannot create {tmp.name} ({exc.strerror})", final) from exc
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
    make_parent(path)
    tmp = path.with_name(f".{path.stem}.part{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
