"""The CTC format rules for a result folder, every violation reported with its frame and label.

The rules are those for which the official CTC evaluation software (TRAMeasure's consistency
check and image loading, py-ctcmetrics' `valid`) refuses a result. Frames are streamed one at
a time, so a long 3D result is checked in bounded memory: per frame only the labels present
(and, for the connectivity warning, their bounding boxes) are looked at.

A label made of several separate pieces in one frame is only a *warning*: neither official
checker tests it, and the CTC's own ground truth has such labels even with 8-connectivity
(12 labels of Fluo-N2DH-SIM+ 01, label 1 of Fluo-C2DL-MSC 01 in frame 19), so refusing them
would refuse the reference data. Connectivity is the most lenient one (8 in 2D, 26 in 3D).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from inference.errors import CTCError
from inference.io import Track, list_frames, open_images, read_tiff
from inference.io.result import RES_TRACK_FILE
from inference.io.tracks import BAD_LINE, parse_track_lines

#: rule -> what it demands. Every Violation names one of these.
RULES = {
    "track-file": "res_track.txt exists and is readable",
    "track-line": "each res_track.txt line is 'L B E P': four integers, L > 0, B, E, P >= 0",
    "duplicate-label": "each label is declared on one line only",
    "track-range": "B <= E, both inside the sequence (0 .. frames-1)",
    "parent-self": "a track is not its own parent",
    "parent-missing": "a parent label is declared in res_track.txt",
    "parent-order": "a parent ends strictly before its child begins (gaps allowed)",
    "mask-files": "mask000.tif ... are the only TIFFs, all readable, one numbering width",
    "frame-missing": "mask frames are numbered 0, 1, 2, ... without gaps",
    "frame-count": "as many mask frames as input frames",
    "dtype": "masks are uint16 label images",
    "shape": "every mask has the shape of the first mask and of the input frames",
    "empty-frame": "(warning) a mask frame holds at least one object (some CTC tools stop)",
    "undeclared": "every label in the masks is declared in res_track.txt",
    "unused": "every declared label appears in the masks",
    "missing": "a label is present in every frame B..E of its line",
    "extra": "a label is present in no frame outside B..E",
    "disconnected": "(warning) a label is one connected object per frame (8-/26-connectivity)",
}

#: Rules reported only as advice: the CTC does not enforce them.
#: An empty frame is legitimate (all cells left the field) and py-ctcmetrics scores it, but
#: some versions of the CTC's Java tools stop on it, so it is flagged, not refused.
WARNING_RULES = frozenset({"disconnected", "empty-frame"})


@dataclass(frozen=True)
class Violation:
    """One broken rule, located by frame and label where it has them."""

    rule: str
    frame: int | None
    label: int | None
    message: str

    @property
    def severity(self) -> str:
        """'error' makes the result invalid; 'warning' is advice the CTC does not enforce."""
        return "warning" if self.rule in WARNING_RULES else "error"

    def __str__(self) -> str:
        where = [f"frame {self.frame}"] if self.frame is not None else []
        where += [f"label {self.label}"] if self.label is not None else []
        kind = "warning " if self.severity == "warning" else ""
        place = f" {', '.join(where)}:" if where else ""
        return f"{kind}[{self.rule}]{place} {self.message}"


class _Report(list):
    def add(self, rule: str, frame: int | None, label: int | None, message: str) -> None:
        self.append(Violation(rule, frame, label, message))


def is_valid(violations: Iterable[Violation]) -> bool:
    """True when no violation is an error (warnings allowed)."""
    return all(v.severity != "error" for v in violations)


def ranges(frames: Iterable[int]) -> str:
    """Compact frame list: [1, 2, 3, 7] -> '1-3, 7'."""
    items = sorted(set(frames))
    parts, start = [], None
    for i, value in enumerate(items):
        start = value if start is None else start
        if i + 1 == len(items) or items[i + 1] != value + 1:
            parts.append(str(start) if start == value else f"{start}-{value}")
            start = None
    return ", ".join(parts)


def frames_text(frames: Iterable[int]) -> str:
    """'frame 3' or 'frames 1-3, 7', for messages."""
    items = set(frames)
    return f"frame {min(items)}" if len(items) == 1 else f"frames {ranges(items)}"


def count_divisions(tracks: Iterable[Track]) -> int:
    """Division events: parents with two or more children (as the CTC's BC counts them)."""
    children = Counter(track.parent for track in tracks if track.parent > 0)
    return sum(1 for count in children.values() if count >= 2)


def validate_result(
    res_dir: str | Path, *, images_dir: str | Path | None = None, warnings: bool = False
) -> list[Violation]:
    """Check a CTC result folder against every CTC rule; [] means valid.

    With `images_dir` (the input sequence, e.g. `Dataset/01`) also checks the frame count
    and shape against it. With `warnings`, adds advice the CTC does not enforce (labels in
    several pieces, empty frames); use `is_valid` then. A missing `res_dir` or a bad input
    sequence raises CTCError: those are usage errors, not properties of the result.
    """
    res_dir = Path(res_dir)
    if not res_dir.is_dir():
        raise CTCError("not a folder" if res_dir.exists() else "result folder not found", res_dir)
    report = _Report()
    tracks = _read_track_file(res_dir / RES_TRACK_FILE, report)
    try:
        frames = list_frames(res_dir, "mask", contiguous=False)
    except CTCError as exc:
        report.add("mask-files", None, None, str(exc))
        frames = []
    n_frames = frames[-1].index + 1 if frames else 0
    gaps = sorted(set(range(n_frames)) - {f.index for f in frames})
    if gaps:
        report.add("frame-missing", gaps[0], None, f"no mask for {frames_text(gaps)}")
    shape = None
    if images_dir is not None:
        images = open_images(images_dir)
        shape = images.shape
        if frames and n_frames != len(images):
            report.add("frame-count", None, None, f"{n_frames} masks, the input has {len(images)}")

    present: dict[int, list[int]] = defaultdict(list)
    pieces: dict[int, list[int]] = defaultdict(list)
    skipped = set(gaps)
    for frame in frames:
        labels = _read_mask(frame.path, frame.index, shape, report)
        if labels is None:
            skipped.add(frame.index)
            continue
        shape = shape or labels.shape
        boxes = ndimage.find_objects(labels)
        seen = [i + 1 for i, box in enumerate(boxes) if box is not None]
        if warnings and not seen:
            report.add("empty-frame", frame.index, None, "no object (some CTC tools stop here)")
        for label in seen:
            present[label].append(frame.index)
            if warnings and _pieces(labels, boxes[label - 1], label) > 1:
                pieces[label].append(frame.index)

    if tracks is not None:
        _check_lineage(tracks, n_frames, report)
        _check_presence(tracks, present, skipped, n_frames, report)
    for label, where in sorted(pieces.items()):
        report.add("disconnected", where[0], label, f"several pieces in {frames_text(where)}")
    return list(report)


def _read_track_file(path: Path, report: _Report) -> list[tuple[int, Track]] | None:
    """(line number, Track) per good line; a bad line is reported, the rest still checked."""
    if not path.is_file():
        report.add("track-file", None, None, f"{path.name} is missing")
        return None
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        report.add("track-file", None, None, f"{path.name} is unreadable ({exc})")
        return None
    tracks = []
    for number, line, track in parse_track_lines(text):
        if track is None:
            report.add(
                "track-line", None, None, f"{path.name} line {number}: {BAD_LINE}, got {line!r}"
            )
            continue
        tracks.append((number, track))
    return tracks


def _read_mask(
    path: Path, index: int, shape: tuple[int, ...] | None, report: _Report
) -> np.ndarray | None:
    """The frame as uint16 labels for the checks, or None (reported) when unusable."""
    try:
        labels = read_tiff(path)
    except CTCError as exc:
        report.add("mask-files", index, None, str(exc))
        return None
    if labels.dtype != np.uint16:
        report.add("dtype", index, None, f"{path.name} is {labels.dtype}, not uint16")
    if shape is not None and labels.shape != shape:
        report.add("shape", index, None, f"{path.name} has shape {labels.shape}, not {shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        return None
    if labels.size and (labels.min() < 0 or labels.max() > np.iinfo(np.uint16).max):
        report.add("dtype", index, None, f"{path.name} has labels outside 0..65535")
        return None
    return labels.astype(np.uint16, copy=False)


def _pieces(labels: np.ndarray, box: tuple[slice, ...], label: int) -> int:
    """Connected pieces of one label inside its bounding box (8-/26-connectivity)."""
    structure = np.ones((3,) * labels.ndim, dtype=bool)
    return ndimage.label(labels[box] == label, structure=structure)[1]


def _check_lineage(tracks: list[tuple[int, Track]], n_frames: int, report: _Report) -> None:
    lines: dict[int, list[int]] = defaultdict(list)
    for number, track in tracks:
        lines[track.label].append(number)
    for label, numbers in sorted(lines.items()):
        if len(numbers) > 1:
            report.add("duplicate-label", None, label, f"declared on lines {str(numbers)[1:-1]}")
    declared = {track.label: track for _, track in reversed(tracks)}  # the first line wins
    for _, track in tracks:
        label, begin, end, parent = track.label, track.begin, track.end, track.parent
        if end < begin:
            report.add("track-range", begin, label, f"ends ({end}) before it begins ({begin})")
        elif n_frames and end >= n_frames:
            report.add(
                "track-range", end, label, f"ends at {end}, the masks stop at {n_frames - 1}"
            )
        if parent == label:
            report.add("parent-self", begin, label, "is its own parent")
        elif parent and parent not in declared:
            report.add("parent-missing", begin, label, f"parent {parent} is not declared")
        elif parent and declared[parent].end >= begin:
            report.add(
                "parent-order",
                begin,
                label,
                f"begins at {begin} but parent {parent} ends at {declared[parent].end}, not before",
            )


def _check_presence(
    tracks: list[tuple[int, Track]],
    present: dict[int, list[int]],
    skipped: set[int],
    n_frames: int,
    report: _Report,
) -> None:
    declared = {track.label: track for _, track in reversed(tracks)}
    for label in sorted(set(present) | set(declared)):
        frames = set(present.get(label, ()))
        track = declared.get(label)
        if track is None:
            report.add(
                "undeclared",
                min(frames),
                label,
                f"in the masks ({frames_text(frames)}) but not in {RES_TRACK_FILE}",
            )
            continue
        span = f"{track.begin}-{track.end}"
        expected = set(range(track.begin, min(track.end, n_frames - 1) + 1)) - skipped
        if not frames:
            if expected:
                report.add("unused", track.begin, label, f"declared {span}, never in the masks")
            continue
        missing = expected - frames
        extra = {t for t in frames if t < track.begin or t > track.end}
        if missing:
            report.add(
                "missing",
                min(missing),
                label,
                f"declared {span}, absent from {frames_text(missing)}",
            )
        if extra:
            report.add("extra", min(extra), label, f"declared {span}, also in {frames_text(extra)}")
