"""Does a division look like a mitosis? What the masks around it say, as numbers.

A segmenter's mistakes reach the solver as divisions: a cell cut in two, a spurious blob
beside a cell, two cells merged for a frame that part again. The GNN scores links one by
one and cannot see what tells these from a mitosis, which shows over several frames:
daughters of about the same size that together exceed their mother (a rounded mother
shrinks before it divides, daughters flatten and grow), a mother no larger than her own
track was (a merged pair is), daughters that came out of the mother's mask and move apart.

`division_features` measures that from label masks alone (so `gnntrack track` on masks
works as `gnntrack run` does), in 2D and 3D, in units of the cells themselves (no pixel
scale). `DivisionModel` is a logistic regression over them, fitted by
`training/tracker/fit_division.py` on divisions our tracker made on masks with injected
segmentation errors (labelled by the ground truth), stored as a model folder `division/`
beside `tracker/` (`inference.models.division`). `inference.tracking.repair` asks it about
every division the other repairs leave standing.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from inference.cells.borders import centroid, neighbour_pairs

#: What `division_features` measures, in order (a model folder records them; loading checks).
FEATURES = (
    "daughters_over_mother",  # summed daughter size at t over the mother's at t-1
    "smaller_over_larger",  # daughters' sizes at t
    "smaller_over_larger_later",  # ... where both are last seen up to `LATER` frames on
    "mother_over_its_past",  # the mother's size at t-1 over its median in the frames before
    "contact",  # border between the daughters at t over the smaller's size ** (1 - 1/ndim)
    "contact_later",  # ... where both are last seen up to `LATER` frames on (cuts stay joined)
    "separation",  # centroid distance of the daughters at t over the mother's diameter
    "separation_growth",  # that distance `LATER` frames on over the distance at t
    "worse_origin",  # the lower fraction of a daughter inside the mother's mask at t-1
)
#: Frames after the division that the features look at (the repairs hold that many).
LATER = 2
#: Frames before the division's t-1 whose mother sizes make its past.
PAST = 2

#: Where a held mask is not available (end of the sequence, outside the held frames).
MaskAt = Callable[[int], "np.ndarray | None"]


def division_features(
    mask_at: MaskAt, frame: int, mother: int, first: int, second: int
) -> np.ndarray | None:
    """The `FEATURES` of `mother` (a label in frame `frame` - 1) dividing into `first` and
    `second` (labels in `frame`), from the masks `mask_at(t)` gives (None where it has
    none); None when the mother or a daughter cannot be seen."""
    before, now = mask_at(frame - 1), mask_at(frame)
    if before is None or now is None:
        return None
    mum = before == mother
    one, two = now == first, now == second
    a_m, a1, a2 = int(mum.sum()), int(one.sum()), int(two.sum())
    if not (a_m and a1 and a2):
        return None
    past = []
    for t in range(frame - 2, frame - 2 - PAST, -1):
        earlier = mask_at(t) if t >= 0 else None
        size = int((earlier == mother).sum()) if earlier is not None else 0
        if size:
            past.append(size)
    diameter = _diameter(a_m, mum.ndim)
    distance = _distance(one, two)
    contact = _contact(now, first, second, min(a1, a2))
    later_ratio, later_distance, later_contact = min(a1, a2) / max(a1, a2), distance, contact
    for t in range(frame + LATER, frame, -1):
        mask = mask_at(t)
        if mask is None:
            continue
        one_later, two_later = mask == first, mask == second
        b1, b2 = int(one_later.sum()), int(two_later.sum())
        if b1 and b2:
            later_ratio, later_distance = min(b1, b2) / max(b1, b2), _distance(one_later, two_later)
            later_contact = _contact(mask, first, second, min(b1, b2))
            break
    return np.array(
        [
            (a1 + a2) / a_m,
            min(a1, a2) / max(a1, a2),
            later_ratio,
            a_m / float(np.median(past)) if past else 1.0,
            contact,
            later_contact,
            distance / diameter,
            min(later_distance / max(distance, 1.0), 4.0),
            min((one & mum).sum() / a1, (two & mum).sum() / a2),
        ],
        dtype=np.float32,
    )


def _diameter(size: int, ndim: int) -> float:
    """Diameter of a disc (2D) or ball (3D) of `size` pixels."""
    if ndim == 3:
        return float((6.0 * size / math.pi) ** (1.0 / 3.0))
    return float(math.sqrt(4.0 * size / math.pi))


def _distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(centroid(a) - centroid(b)))


def _contact(mask: np.ndarray, a: int, b: int, smaller: int) -> float:
    """Face-adjacent pixel pairs with `a` on one side and `b` on the other, over the
    `smaller` cell's size to the power 1 - 1/ndim (its side: a cut's border is about 2)."""
    other, _ = neighbour_pairs(mask, a)
    return int((other == b).sum()) / smaller ** ((mask.ndim - 1) / mask.ndim)
