"""CTC track files (`res_track.txt`, `man_track.txt`): one `L B E P` line per track."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from inference.errors import CTCError
from inference.io.atomic import atomic_file

BAD_LINE = "expected 'L B E P': four integers, L > 0 and B, E, P >= 0"


@dataclass(frozen=True, order=True)
class Track:
    """A track: `label` is present from frame `begin` to `end` (inclusive); `parent` 0 = none."""

    label: int
    begin: int
    end: int
    parent: int = 0


def parse_track_lines(text: str) -> Iterator[tuple[int, str, Track | None]]:
    """(line number, line, Track) per non-blank line; Track is None where the line is not
    four integers 'L B E P' with L > 0 and B, E, P >= 0."""
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        try:
            values = [int(field) for field in fields]
        except ValueError:
            values = []
        good = len(values) == 4 and values[0] > 0 and min(values[1:]) >= 0
        yield number, line.strip(), Track(*values) if good else None


def parse_tracks(text: str, source: str | Path = "<track file>") -> list[Track]:
    """Parse `L B E P` lines; a malformed line raises CTCError naming the file and line."""
    tracks = []
    for number, line, track in parse_track_lines(text):
        if track is None:
            raise CTCError(f"line {number}: {BAD_LINE}, got {line!r}", source)
        tracks.append(track)
    return tracks


def read_tracks(path: str | Path) -> list[Track]:
    """Read a `res_track.txt` / `man_track.txt` file."""
    path = Path(path)
    if not path.is_file():
        raise CTCError("track file not found", path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise CTCError(f"cannot read track file ({exc})", path) from exc
    return parse_tracks(text, path)


def format_tracks(tracks: Iterable[Track]) -> str:
    return "".join(f"{t.label} {t.begin} {t.end} {t.parent}\n" for t in sorted(tracks))


def write_tracks(path: str | Path, tracks: Iterable[Track]) -> None:
    """Write a track file atomically, sorted by label."""
    text = format_tracks(tracks)
    atomic_file(path, lambda tmp: tmp.write_text(text))
