"""Summary numbers of a result from its track file alone: tracks, divisions, lengths, cells.

A valid CTC result has every track's label in every frame from its begin to its end, so the
cells per frame and the track lengths follow from `res_track.txt` without reading a mask.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inference.ctc_rules import count_divisions
from inference.io import Track


@dataclass(frozen=True)
class Summary:
    """Counts of one result; `lengths` in frames per track, `cells` per frame."""

    n_frames: int
    n_tracks: int
    n_divisions: int
    n_roots: int
    lengths: np.ndarray
    cells: np.ndarray

    def rows(self) -> list[tuple[str, str]]:
        """(name, value) pairs for a table, in reading order."""
        lengths = self.lengths if len(self.lengths) else np.zeros(1)
        cells = self.cells if len(self.cells) else np.zeros(1)
        return [
            ("frames", str(self.n_frames)),
            ("tracks", str(self.n_tracks)),
            ("divisions", str(self.n_divisions)),
            ("lineages (tracks without a parent)", str(self.n_roots)),
            ("tracks spanning every frame", str(int(np.sum(self.lengths == self.n_frames)))),
            (
                "track length (frames): mean / median / max",
                f"{lengths.mean():.1f} / {np.median(lengths):.0f} / {lengths.max():.0f}",
            ),
            (
                "cells per frame: first / mean / last",
                f"{cells[0]:.0f} / {cells.mean():.1f} / {cells[-1]:.0f}",
            ),
        ]


def summarize(tracks: Iterable[Track], n_frames: int) -> Summary:
    """The summary of a lineage of `n_frames` frames."""
    tracks = list(tracks)
    labels = {t.label for t in tracks}
    lengths = np.asarray([t.end - t.begin + 1 for t in tracks], np.int64)
    cells = np.zeros(n_frames + 1, np.int64)
    for t in tracks:
        cells[min(t.begin, n_frames)] += 1
        cells[min(t.end + 1, n_frames)] -= 1
    return Summary(
        n_frames=n_frames,
        n_tracks=len(tracks),
        n_divisions=count_divisions(tracks),
        n_roots=sum(1 for t in tracks if t.parent not in labels),
        lengths=lengths,
        cells=np.cumsum(cells)[:n_frames],
    )


def plot_summary(summary: Summary, path: str | Path) -> Path:
    """Two panels in one PNG: the track-length histogram and the cells per frame."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.0), dpi=100, layout="constrained")
    left, right = fig.subplots(1, 2)
    if len(summary.lengths):
        bins = np.arange(0.5, summary.lengths.max() + 1.5, max(1, summary.n_frames // 40))
        left.hist(summary.lengths, bins=bins, color="#4c72b0")
    left.set_xlabel("track length (frames)")
    left.set_ylabel("tracks")
    left.set_title("track lengths", fontsize=10, loc="left")
    right.plot(np.arange(summary.n_frames), summary.cells, color="#4c72b0", lw=1.5)
    right.set_xlabel("frame")
    right.set_ylabel("cells")
    right.set_ylim(0, max(1, int(summary.cells.max(initial=0))) * 1.12)
    right.set_title("cells per frame", fontsize=10, loc="left")
    fig.savefig(path)
    return Path(path)
