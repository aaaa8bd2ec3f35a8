"""Missed detections filled: a gap link bridged with a mask (`fill_gaps`).

A track continued over one missing frame (a gap
link) gets a mask in that frame, its previous mask moved halfway to its next centroid and
painted on background pixels only; the two tracks become one (one label, no parent/child
pair). The gap link already passed the solver's gap cost; the repair asks only that the
continuation persist (live more than `short_frames` frames, or have children): on the GT
of held-out SIM+ frames the one gap link the solver made led to a one-frame object, a
wrong link that filling would have turned into a false cell and a lost complete track.
Without a free pixel to paint, the parent/child pair is kept. A mother missed in the
frame before she divides leaves the same gap link to one daughter and the other daughter
without a parent: a lasting parentless track born in that frame off the border, beside
the linked one, both daughter-sized and together about the mother's size (`_gap_sister`),
is her second daughter; the missed frame gets the mother moved halfway to the daughters
and the division is kept at its frame.

A cell missed for a frame that comes back beside a neighbour, taken for its daughter, is
resumed the same way (`_resume_missed`).
"""

from __future__ import annotations

import numpy as np

from inference.cells.borders import centroid
from inference.tracking.repair.held import HeldFrames
from inference.tracking.repair.masks import diameter, on_border, shifted
from inference.tracking.repair.params import (
    DAUGHTER_SHARE,
    PAIR_SHARE,
    RESUME_REACH,
    RESUME_SISTER,
    SISTER_REACH,
)


class GapRepairs(HeldFrames):
    """Repairs of missed detections."""

    def _fill_gap(self, t: int, parent: int, child: int) -> None:
        """Paint `parent`'s cell into the missed frame t-1 and make `child` its continuation,
        unless `child` is short-lived itself (then the gap link was likely wrong)."""
        before, missed, mask = self._held(t - 2), self._held(t - 1), self._held(t)
        if before is None or missed is None or mask is None or self._short(child):
            return
        source = self.find(parent)
        cells = before == source
        after = mask == self.find(child)
        if not cells.any() or not after.any():
            return
        sister = self._gap_sister(t, cells, after) if self.params.merge_cuts else 0
        if sister:
            after = after | (mask == sister)
        shift = np.round((centroid(after) - centroid(cells)) / 2).astype(int)
        moved = shifted(cells, shift) & (missed == 0)
        if not moved.any():
            return  # no free pixel: the parent/child pair stays
        missed[moved] = source
        if sister:  # the mother divided in the missed frame's next: two daughters
            self.adopted[sister] = parent
            self.ends[parent] = t - 1
        else:
            self._merge(child, parent)

    def _gap_sister(self, t: int, mother: np.ndarray, daughter: np.ndarray) -> int:
        """A lasting parentless track born in frame `t` off the border beside `daughter`
        (the cell a gap link continued `mother`, seen in frame t-2, with): the mother missed
        in the frame she divided before, so her second daughter came without a parent.
        Each is at most `DAUGHTER_SHARE` of the mother, the two together `PAIR_SHARE`, their
        centroids within `SISTER_REACH` mother diameters, and no long border (a cut) joins
        them. 0 when there is none."""
        mask = self._held(t)
        if mask is None:
            return 0
        area = float(mother.sum())
        reach = SISTER_REACH * diameter(area, mother.ndim)
        first = float(daughter.sum())
        for frame, label in self.orphans:
            if frame != t or self.find(label) != label or self._short(label):
                continue
            cells = mask == label
            second = float(cells.sum())
            if not cells.any() or on_border(cells):
                continue
            if max(first, second) > DAUGHTER_SHARE * area:
                continue
            if not PAIR_SHARE[0] * area <= first + second <= PAIR_SHARE[1] * area:
                continue
            if np.linalg.norm(centroid(cells) - centroid(daughter)) > reach:
                continue
            both = np.where(daughter, 1, np.where(cells, 2, 0))
            if self._joined(both, 2):
                continue
            return label
        return 0

    def _resume_missed(self, frame: int, mother: int, first: int, second: int) -> bool:
        """A cell missed for a frame that comes back beside a neighbour may be taken for
        the neighbour's daughter instead of a gap. A daughter about the size of a cell whose
        track ended the frame before last (`_ended`, lasting), at that cell's place
        (centroids within `RESUME_REACH` of its diameter), while her sister stays at least
        `RESUME_SISTER` of the mother: she continues that cell's track, over the missed frame
        filled in as in `_fill_gap` (where its place is at least half free: otherwise it was
        merged, not missed), and the mother goes on as the sister. Whether it did."""
        before, missed, mask = self._held(frame - 2), self._held(frame - 1), self._held(frame)
        if before is None or missed is None or mask is None:
            return False
        labels = mother, first, second = tuple(self.find(x) for x in (mother, first, second))
        if len(set(labels)) < 3:
            return False
        for piece, sister in ((first, second), (second, first)):
            if (mask == sister).sum() < RESUME_SISTER * (missed == mother).sum():
                continue
            cells = mask == piece
            lost = self._lost_at(frame, cells, before)
            if not lost:
                continue
            old = before == lost
            shift = np.round((centroid(cells) - centroid(old)) / 2).astype(int)
            placed = shifted(old, shift)
            moved = placed & (missed == 0)
            if moved.sum() < 0.5 * placed.sum():
                continue  # its place is taken: a merge, not a miss (or no room to fill)
            missed[moved] = lost
            self._merge(piece, lost)
            self._merge(sister, mother)
            return True
        return False

    def _lost_at(self, frame: int, cells: np.ndarray, before: np.ndarray) -> int:
        """The cell of frame `frame` - 2 (`before`) whose track ended there, lasting and
        childless, of about `cells`' size (within `PAIR_SHARE` of its size there, changed
        over the two frames as it changed the frame before) and at its place; 0: none."""
        area, centre = float(cells.sum()), centroid(cells)
        # only cells of about that size can qualify, so only those within reach of a cell
        # of the largest such size: look for them in a box around the centre, not among
        # every cell of the frame (a dense frame holds hundreds)
        across = diameter(area / PAIR_SHARE[0], before.ndim)
        half = (RESUME_REACH + 2) * across  # its reach, and its own extent twice over
        box = tuple(slice(max(int(c - half), 0), int(c + half) + 1) for c in centre.tolist())
        sizes = np.bincount(before.ravel())
        earlier = self._held(frame - 3)
        earlier_sizes = np.bincount(earlier.ravel()) if earlier is not None else np.zeros(1)
        best, nearest = 0, np.inf
        for label in np.unique(before[box][before[box] > 0]).tolist():
            # its size two frames on, changed as it changed in its last frame (a cell
            # leaving the field shrinks frame by frame; a steady cell stays as it was)
            seen = label < len(earlier_sizes) and earlier_sizes[label] > 0
            trend = sizes[label] / earlier_sizes[label] if seen else 0
            change = float(np.clip(trend, 0.5, 2.0)) ** 2 if trend else 1.0
            expected = sizes[label] * change
            if not PAIR_SHARE[0] <= area / expected <= PAIR_SHARE[1]:
                continue
            old = before == label
            reach = RESUME_REACH * diameter(float(sizes[label]), old.ndim)
            distance = float(np.linalg.norm(centroid(old) - centre))
            if distance > reach or distance >= nearest:
                continue
            track = self.lineage.track(label) if label <= self.seen else None
            if track is None or label in self.removed or not self._ended(label, frame - 1, frame):
                continue
            if 0 < track.begin and track.end - track.begin < self.params.short_frames:
                continue  # a short piece, not a cell that was there
            best, nearest = int(label), distance
        return best
