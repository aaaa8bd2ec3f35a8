"""Training frames as the tracker sees them with candidate cells (the solver's `unions`).

At run time a frame whose cells touch along a long border is scored twice: as segmented,
and merged (each candidate pair as one cell, `inference.tracking.candidates`). The solver
then weighs a union's link against its pieces' links, and a GNN trained only on whole cells
scores both pieces of a cut cell as the cell continuing or dividing, which outweighs the
union. So on damaged training frames (`training.mask_errors`) the candidates are labelled
as the solver should choose them:

- in the frame as segmented, the two pieces of one cell (a pair with one track id) are not
  the cell: each gets an id of its own that no track has, so its links are false;
- in the merged frame, a union of one cell's pieces is that cell (its id), a union of two
  cells is no cell (an id of its own, links false); every other cell keeps its id.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator

import numpy as np

from inference.cells.features import compact_labels, frame_features
from inference.tracking.candidates import alternative_frame, cut_candidates
from training.tracked import TrackedFrame

#: Ids given to candidates that are no cell: above any CTC track label (uint16).
_NO_CELL = 1 << 40


def candidate_versions(
    frames: Iterable[TrackedFrame], contact: float
) -> tuple[list[TrackedFrame], list[TrackedFrame]]:
    """The frames as segmented and merged, their candidates labelled (module docstring)."""
    fresh = itertools.count(_NO_CELL)
    segmented, merged = [], []
    for frame in frames:
        a, b = _split(frame, contact, fresh)
        segmented.append(a)
        merged.append(b)
    return segmented, merged


def _split(
    frame: TrackedFrame, contact: float, fresh: Iterator[int]
) -> tuple[TrackedFrame, TrackedFrame]:
    index, count, ids = frame.compact.index, frame.compact.count, frame.track_ids
    pairs = cut_candidates(index, count, contact)
    if not len(pairs):
        return frame, frame
    first, second = ids[pairs[:, 0]], ids[pairs[:, 1]]
    one_cell = (first == second) & (first > 0)
    pieces = ids.copy()
    for row in pairs[one_cell].reshape(-1):
        pieces[row] = next(fresh)
    merged_index, unions = alternative_frame(index, count, pairs)
    compact = compact_labels(merged_index)
    table = frame_features(merged_index, frame.image, frame.frame, compact)
    merged_ids = np.empty(len(unions.merged_row), np.int64)
    for row, node in enumerate(unions.merged_row):
        if node < count:
            merged_ids[row] = ids[node]
        else:
            u = node - count
            merged_ids[row] = first[u] if one_cell[u] else next(fresh)
    segmented = TrackedFrame(frame.frame, frame.image, frame.compact, frame.table, pieces)
    return segmented, TrackedFrame(frame.frame, frame.image, compact, table, merged_ids)
