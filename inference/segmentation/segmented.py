"""What a segmenter knows of a frame beyond its masks, handed to the tracker in memory."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SegmentedFrame:
    """A frame's label mask with two other segmentations of the same probability maps: a
    coarser one (pieces without a clear edge between them joined) and a finer one (objects
    with two centres or a weak neck in two). The tracker offers them to its solver as
    candidate cells (`inference.tracking.candidates.segmenter_candidates`); nothing of
    them is written."""

    labels: np.ndarray
    coarser: np.ndarray
    finer: np.ndarray
