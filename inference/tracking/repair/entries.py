"""Cells entering the field kept apart from the cell beside them (`border_entries`).

A cell that comes into view at the image border shows first as a sliver, and the solver
may take it for the daughter of the cell it appears beside, whose track goes on as the
other "daughter". A mitosis leaves two daughters of about half the mother each (the
simulator's 0.51-0.80 of her at birth); a daughter seen only in part at the border is
smaller, but then her sister is still a daughter. So a division whose smaller daughter
touches the image border in YX and is less than `ENTRY_SHARE` of the mother's area, while
the other is at least `ENTRY_SISTER` of it (the mother, not a daughter), is undone: the
larger continues the mother's track and the sliver starts a track of its own (no parent).

Measured before it was built, on the GT masks of a dense HeLa-like simulation at the size
of issue 17's (`gnntrack simulate --preset Fluo-N2DL-HeLa --frames 400 --size 1024 --seed
6`), linked by `general-2d`: 18 of its 19 false divisions, and all 7 identity switches,
were within 20 px of the border; of the 18, 13 had a smaller daughter under 0.12 of the
mother and a larger one over 0.85 of her, which 1 of the 63 true divisions near the border
had as well (a mother half outside the field, whose larger daughter came further in).
"""

from __future__ import annotations

from inference.tracking.repair.held import HeldFrames
from inference.tracking.repair.masks import on_border
from inference.tracking.repair.params import ENTRY_SHARE, ENTRY_SISTER


class EntryRepairs(HeldFrames):
    """Repairs of cells entering the field taken for daughters."""

    def _entering(self, frame: int, mother: int, first: int, second: int) -> bool:
        """Undo the division of `mother` in `frame` if its smaller daughter is a cell
        entering the field beside her (see the module docstring); whether it did."""
        before, mask = self._held(frame - 1), self._held(frame)
        labels = mother, first, second = tuple(self.find(x) for x in (mother, first, second))
        if before is None or mask is None or len(set(labels)) < 3:
            return False
        area = int((before == mother).sum())
        sizes = [int((mask == daughter).sum()) for daughter in (first, second)]
        small, large = (first, second) if sizes[0] <= sizes[1] else (second, first)
        if not area or min(sizes) >= ENTRY_SHARE * area or max(sizes) < ENTRY_SISTER * area:
            return False
        if not on_border(mask == small, axes=(-2, -1)):  # a stack's z slabs are no entry
            return False
        self._merge(large, mother)
        self.unparented.add(small)
        return True
