"""Track labels assigned online, frame by frame, from the solver's links: a CTC lineage.

A cell with one successor passes its label on; a cell with two ends its track and each
daughter starts a new one with it as parent; a cell linked across a missed frame starts a
new track whose parent is the track it continues (the CTC way of writing a gap); any other
cell starts a new track without a parent. Labels are consecutive from 1, so a frame's result
is final as soon as its links are, and can be written while later frames are still read.
"""

from __future__ import annotations

import numpy as np

from inference.cells.features import apply_lut
from inference.errors import CTCError
from inference.io import Track
from inference.tracking.solve import PairSolution

#: Largest label a CTC result (uint16 masks) can hold.
MAX_LABEL = 65535


class LineageBuilder:
    """Tracks (label, begin, end, parent) grown one frame at a time."""

    def __init__(self) -> None:
        self._begin: list[int] = []
        self._end: list[int] = []
        self._parent: list[int] = []

    def _new(self, frame: int, parent: int) -> int:
        label = len(self._begin) + 1
        if label > MAX_LABEL:
            raise CTCError(f"more than {MAX_LABEL} tracks: labels no longer fit a uint16 mask")
        self._begin.append(frame)
        self._end.append(frame)
        self._parent.append(parent)
        return label

    def start(self, frame: int, n: int) -> np.ndarray:
        """Labels of the `n` cells of the first frame: all new tracks."""
        return np.asarray([self._new(frame, 0) for _ in range(n)], np.int64)

    def advance(
        self,
        frame: int,
        solution: PairSolution,
        labels_prev: np.ndarray,
        labels_prev2: np.ndarray,
    ) -> np.ndarray:
        """Labels of the cells of `frame` from their predecessors in `frame`-1 or `frame`-2."""
        children = solution.children(len(labels_prev))
        out = np.zeros(len(solution.source), np.int64)
        for j, (i, gap) in enumerate(zip(solution.source, solution.from_gap, strict=True)):
            if i < 0:
                out[j] = self._new(frame, 0)
            elif gap:
                out[j] = self._new(frame, int(labels_prev2[i]))
            elif children[i] == 1:
                label = int(labels_prev[i])
                self._end[label - 1] = frame
                out[j] = label
            else:
                out[j] = self._new(frame, int(labels_prev[i]))
        return out

    def tracks(self) -> list[Track]:
        """The lineage so far, one `Track` per label."""
        return [
            Track(k + 1, b, e, p)
            for k, (b, e, p) in enumerate(zip(self._begin, self._end, self._parent, strict=True))
        ]

    def track(self, label: int) -> Track:
        """One track of the lineage so far."""
        k = label - 1
        return Track(label, self._begin[k], self._end[k], self._parent[k])

    def __len__(self) -> int:
        return len(self._begin)


def relabel(index: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """A uint16 mask from a compact index image (0, 1..n) and the n track labels."""
    lut = np.zeros(len(labels) + 1, np.uint16)
    lut[1:] = labels
    return apply_lut(index, lut)
