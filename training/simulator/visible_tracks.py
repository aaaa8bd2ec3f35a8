"""CTC tracks from what the camera sees: one track per unbroken stretch of a visible cell.

The CTC numbers a cell's track only while the cell is in the field: a cell that leaves ends its
track, and if it comes back it is a new track without a parent. Daughters of a division get a
parent only when the mother was seen in the frame before and both daughters are seen at birth,
so every division in `man_track.txt` has exactly two daughters starting right after the mother.
"""

from __future__ import annotations

import numpy as np

from inference.errors import CTCError
from inference.io import Track

#: CTC label masks are uint16.
MAX_LABEL = 65535


class Lineage:
    """Assigns track labels frame by frame and collects the `L B E P` table."""

    def __init__(self) -> None:
        self._tracks: dict[int, list[int]] = {}  # label -> [begin, end, parent]
        self._active: dict[int, int] = {}  # cell id -> label, cells seen in the previous frame
        self._next = 1

    def update(self, t: int, cid: np.ndarray, mother: np.ndarray, born: np.ndarray) -> np.ndarray:
        """Labels (one per row) of the cells visible in frame `t`, given their ids, mothers
        and birth frames; continues tracks seen at `t - 1`, opens new ones otherwise."""
        previous, current = self._active, {}
        newborn = (born == t) & (mother >= 0)
        mothers, seen = np.unique(mother[newborn], return_counts=True)
        twins = {int(m) for m, k in zip(mothers, seen, strict=True) if k == 2}
        labels = np.zeros(len(cid), np.int64)
        for row, (c, m, baby) in enumerate(
            zip(cid.tolist(), mother.tolist(), newborn.tolist(), strict=True)
        ):
            label = previous.get(c)
            if label is None:
                parent = previous.get(m, 0) if baby and m in twins else 0
                label = self._open(t, parent)
            else:
                self._tracks[label][1] = t
            current[c] = label
            labels[row] = label
        self._active = current
        return labels

    def _open(self, t: int, parent: int) -> int:
        label = self._next
        if label > MAX_LABEL:
            raise CTCError(
                f"more than {MAX_LABEL} tracks do not fit CTC uint16 masks; "
                "simulate fewer frames or cells"
            )
        self._next += 1
        self._tracks[label] = [t, t, parent]
        return label

    def tracks(self) -> list[Track]:
        """The `man_track.txt` rows so far, sorted by label."""
        return [Track(label, b, e, p) for label, (b, e, p) in sorted(self._tracks.items())]

    @property
    def divisions(self) -> int:
        return len({p for _, _, p in self._tracks.values() if p})
