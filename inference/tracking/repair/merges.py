"""Merged cells split: a division that ends a merge is two cells again (`split_merges`).

A segmenter that fuses two touching cells into one
object for a frame or two makes the solver continue one of them into the object and end
the other; when the cells part, the object "divides" into the two. Each division is
first asked whether it ends such a merge: in one of the `short_frames` frames before it
(s, the first merged frame), the mother's object covers at least `merge_cover` of its
own mask in s-1 and of another cell's mask there, and is at least `merge_area` of the
two cells' summed area; that other cell's track is in none of the frames s to the
division, has no child track (a gap link) and had lived more than `short_frames`
frames (or since the first frame: a younger one is an unjoined cut piece or a cell that just
came in). Then, in each merged frame, each pixel of the object goes to the nearer of the
two cells' masks of s-1, moved part of the way from their centroids to those of the
daughters that continue them (daughters paired with the cells by the smaller summed
squared centroid distance); the mother's track continues as one daughter, the other
cell's as the other, and the division is gone. On the two injected merges of the 5% mix
that this finds, the object covers 0.81 and 0.94 of the cell whose track ended, 0.83
and 0.77 of its own, and is 1.00 and 1.07 of their summed area; a dividing mother covers
one cell the frame before (and at most 2/3 of two cells' summed area when their sizes
are within 2x), so 0.5 and 0.8 lie between. A real division survives because its
mother was one cell, not a fused pair of which one track ended there: on GT masks no
division meets the rule. Not handled: two daughters merged right after their birth
(the mother's track runs on into them, and divides a frame late), a merge in the last
frames (it never parts), a merged object that the solver gives a new track, or one
that parts without a division (a new track or a gap link for the second cell).
"""

from __future__ import annotations

import numpy as np

from inference.cells.borders import centroid
from inference.tracking.repair.held import HeldFrames
from inference.tracking.repair.masks import nearer, shifted


class MergeRepairs(HeldFrames):
    """Repairs of two cells fused into one object."""

    def _split_merge(self, frame: int, mother: int, first: int, second: int) -> bool:
        """If the division of `mother` into `first` and `second` in `frame` ends a merge (its
        mask in one of the `short_frames` frames before covered two cells), give the merged
        frames' pixels back to the two cells and let each daughter continue one of them."""
        source = self.find(mother)
        for start in range(frame - 1, max(frame - 1 - self.params.short_frames, 0), -1):
            fused = self._fused(start, frame, source)
            if fused is not None:
                return self._unmerge(start, frame, source, fused, (first, second))
        return False

    def _fused(self, start: int, frame: int, source: int) -> int | None:
        """The cell that `source`'s object in frame `start` fused with, if it is a merge:
        the object covers at least `merge_cover` of both cells' masks in `start` - 1 and of
        their summed area, the other cell's track ended there (`_ended`) after living more
        than `short_frames` frames (or since the first frame)."""
        before, merged = self._held(start - 1), self._held(start)
        if before is None or merged is None:
            return None
        cells = merged == source
        own = before == source
        if not cells.any() or not own.any():
            return None
        cover = self.params.merge_cover
        if (cells & own).sum() < cover * own.sum():
            return None
        values, counts = np.unique(before[cells & (before != source)], return_counts=True)
        for other, inside in zip(values.tolist(), counts.tolist(), strict=True):
            if not other or other in self.removed:
                continue
            area = int((before == other).sum())
            if inside < cover * area or cells.sum() < self.params.merge_area * (area + own.sum()):
                continue
            begin = self.lineage.track(other).begin
            if 0 < begin and start - 1 - begin < self.params.short_frames:
                continue  # too young: a cut piece, or a cell that just came in
            if self._ended(other, start, frame):
                return int(other)
        return None

    def _unmerge(
        self, start: int, frame: int, source: int, other: int, daughters: tuple[int, int]
    ) -> bool:
        """Split `source`'s object in frames `start`..`frame`-1 between itself and `other`
        (each pixel to the nearer of their masks in `start` - 1, moved towards the daughter
        that continues each), then join the daughters to the two tracks."""
        before, after = self._held(start - 1), self._held(frame)
        if before is None or after is None:
            return False
        if len({source, *(self.find(d) for d in daughters)}) < 3:
            return False  # a daughter already joined to its sister or the mother
        own, theirs = before == source, before == other
        c_own, c_other = centroid(own), centroid(theirs)
        mine, yours = daughters
        c1, c2 = (centroid(after == self.find(d)) for d in daughters)
        straight = np.sum((c1 - c_own) ** 2) + np.sum((c2 - c_other) ** 2)
        crossed = np.sum((c2 - c_own) ** 2) + np.sum((c1 - c_other) ** 2)
        if crossed < straight:
            mine, yours, c1, c2 = yours, mine, c2, c1
        fused_area = self.params.merge_area * (own.sum() + theirs.sum())
        steps = frame - start + 1
        splits = []
        for k, t in enumerate(range(start, frame), start=1):
            mask = self._held(t)
            cells = mask == source if mask is not None else None
            if cells is None or cells.sum() < fused_area:
                return False  # not the merged object in every frame
            moved_own = shifted(own, np.round((c1 - c_own) * k / steps).astype(int))
            moved_other = shifted(theirs, np.round((c2 - c_other) * k / steps).astype(int))
            given = nearer(cells, moved_other, moved_own)
            if not given.any() or given.sum() == cells.sum():
                return False
            splits.append((mask, given))
        for mask, given in splits:
            mask[given] = other
        self._merge(mine, source)
        self._merge(yours, other)
        return True
