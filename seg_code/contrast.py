"""A cap on the contrast range, for sequences where a few bright cells stand among dim ones.

Percentile normalisation maps a frame's brightest pixels to 1. On the frames a segmenter
learned from, that is the bright end of ordinary cells; on a sequence whose cells differ
widely in brightness (a few bright, most dim) it is the few, and the dim ones land near 0,
in the noise (the look-shift benchmark's gamma 2: SIM+ SEG 0.41). A `ContrastRule` records
how wide the range was, at most, in units of the typical cell's level above the background
on the model's own frames (`seg_code.look.cell_level` under the model's masks), times a
margin; a run measures its sequence's typical cell the same way and caps every frame's range
at that many times it. On frames like the model's own the cap is wider than the range and
changes nothing. Where the model's masks on a blurred or textured sequence are not cells,
their level misleads the cap: a run drops a cap that multiplies the objects it finds
(`inference.segmentation.adapt.CAP_MAX_GROWTH`), and whether a model gets a rule at all
is chosen on look-shifted validation frames (`training.segmentation.contrast_calibration`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from inference.config import number, optional, setting


@dataclass(frozen=True)
class ContrastRule:
    """`range_per_cell`: the widest percentile range (high minus low percentile) a frame
    keeps, in units of the sequence's typical cell level above the background; None: no cap."""

    range_per_cell: float | None = setting(optional(number(above=0)), None)

    def to_dict(self) -> dict:
        return {"range_per_cell": self.range_per_cell}

    @property
    def active(self) -> bool:
        """Whether the rule ever caps."""
        return self.range_per_cell is not None

    def max_range(self, cell_level: float) -> float | None:
        """The widest range (grey levels) for a sequence whose typical cell stands
        `cell_level` above its background; None where there is no rule or no cell to
        measure (nothing to cap against)."""
        if not self.active or not math.isfinite(cell_level) or cell_level <= 0:
            return None
        return self.range_per_cell * cell_level
