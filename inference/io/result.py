"""CTC result folders (`mask000.tif ...` + `res_track.txt`), written frame by frame.

A result is produced by streaming: the label frames come from an iterator (a tracker, a GT
folder being re-exported) and are written as they arrive, so a 1000-frame 3D sequence never
sits in memory whole. The folder appears only once complete (`atomic_output_dir`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType

import numpy as np

from inference.errors import CTCError
from inference.io.atomic import atomic_output_dir
from inference.io.sequence import frame_name
from inference.io.tiff import write_mask
from inference.io.tracks import Track, write_tracks

#: The track file of a result folder, as the CTC names it.
RES_TRACK_FILE = "res_track.txt"


def write_result(
    out_dir: str | Path,
    masks: Iterable[np.ndarray],
    tracks: Iterable[Track],
    *,
    n_frames: int,
    overwrite: bool = False,
) -> Path:
    """Write a CTC result folder: `n_frames` uint16 label frames plus `res_track.txt`.

    `masks` is consumed one frame at a time; `tracks` only after the last frame, so it may be
    filled while the masks stream (e.g. by `LabelSpans`). Too few or too many frames is a
    CTCError and leaves no folder behind; an existing `out_dir` is replaced only with
    `overwrite`. Returns the folder. The result is not checked against the CTC rules here:
    that is `inference.ctc_rules.validate_result`.

    Masks are compressed and written in a second thread, a few frames behind the producer
    (each is copied first, so the producer may reuse its arrays): LZW compression of a
    frame costs about as much as linking it, and runs beside it on a second core.
    """
    if n_frames < 1:
        raise CTCError(f"a result needs at least one frame, got n_frames={n_frames}", out_dir)
    out_dir = Path(out_dir)
    with atomic_output_dir(out_dir, overwrite=overwrite) as tmp, _BackgroundWrites(2) as bg:
        written = 0
        for index, mask in enumerate(masks):
            if index >= n_frames:
                raise CTCError(f"more masks than n_frames={n_frames}", out_dir)
            bg.submit(write_mask, tmp / frame_name("mask", index, n_frames), np.array(mask))
            written += 1
        bg.wait()
        if written != n_frames:
            raise CTCError(f"got {written} masks, expected n_frames={n_frames}", out_dir)
        write_tracks(tmp / RES_TRACK_FILE, tracks)
    return out_dir


class _BackgroundWrites:
    """Run write calls in one worker thread, at most `depth` behind; errors surface in the
    caller (at a later `submit` or at `wait`), and leaving the block waits for the worker."""

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.pending: deque[Future] = deque()
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gnntrack-write")

    def submit(self, write: Callable[..., object], *args: object) -> None:
        while len(self.pending) >= self.depth:
            self.pending.popleft().result()
        self.pending.append(self.pool.submit(write, *args))

    def wait(self) -> None:
        while self.pending:
            self.pending.popleft().result()

    def __enter__(self) -> _BackgroundWrites:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        for future in self.pending:  # on an error elsewhere: drop what has not started
            future.cancel()
        self.pool.shutdown(wait=True)


class LabelSpans:
    """First and last frame of every label, accumulated over a stream of label frames.

    Use `observe` per frame (or `wrap` around an iterator to collect while another consumer,
    such as `write_result`, streams the frames), then `spans` / `tracks`.
    """

    def __init__(self) -> None:
        self.spans: dict[int, tuple[int, int]] = {}
        self.n_frames = 0

    def observe(self, mask: np.ndarray) -> None:
        """Record the labels of the next frame (0 = background)."""
        frame = self.n_frames
        for label in np.unique(np.asarray(mask)).tolist():
            if label == 0:
                continue
            first, _ = self.spans.get(label, (frame, frame))
            self.spans[label] = (first, frame)
        self.n_frames += 1

    def wrap(self, masks: Iterable[np.ndarray]) -> Iterable[np.ndarray]:
        """Yield `masks` unchanged, observing each one on the way."""
        for mask in masks:
            self.observe(mask)
            yield mask

    def tracks(self, parents: dict[int, int] | None = None) -> list[Track]:
        """One `Track` per label seen, with parents from `parents` (label -> parent label)."""
        parents = parents or {}
        return [
            Track(label, first, last, parents.get(label, 0))
            for label, (first, last) in sorted(self.spans.items())
        ]


def tracks_from_masks(masks: Iterable[np.ndarray]) -> dict[int, tuple[int, int]]:
    """Label -> (first frame, last frame) over a stream of label frames (np.unique per frame).

    Says nothing about gaps: a label absent in between still spans first..last.
    """
    spans = LabelSpans()
    for mask in masks:
        spans.observe(mask)
    return spans.spans
