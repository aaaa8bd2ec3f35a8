"""Candidate cells: two touching pieces offered to the solver as one cell as well.

A segmenter that cuts a cell in two leaves two objects joined by a long border. Besides the
segmenter's cells, each frame then holds a *merged version*: the same label image with each
candidate pair painted as one object. The GNN scores the merged frames' links in a second
pass (so a union is scored in a graph where it stands in for its pieces, as any cell the
network was trained on), and the solver picks, per frame, either a union or its two pieces,
together with the links (`inference.tracking.solve.solve_pair`). A cell cut in one frame and
whole before and after is then linked as one cell: no division, no track for the piece.

Only masks are needed: the pairs are the touching objects whose shared border is long for
their size (at least `contact` times the square root of the smaller one's area, in
face-adjacent pixel pairs; the cut test of the repairs, `RepairParams.cut_contact`). Each
object is in at most one pair (the longest borders relative to size first), so one merged
frame holds every union and memory and time grow by at most one frame's features.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Unions:
    """The candidate unions of one frame, against its cells (rows 0..n-1).

    `parts[u]` are the rows of union u's two pieces; the merged frame's cells are the frame's
    cells with each pair as one, and `merged_row[r]` names merged row r in the solver's
    numbering: a cell's own row, or `n + u` for union u.
    """

    parts: np.ndarray  # (k, 2) int64
    merged_row: np.ndarray  # (m,) int64

    def __len__(self) -> int:
        return len(self.parts)


def shared_borders(index: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair of touching objects of the label image `index` (a < b) and the length of
    the border they share (face-adjacent pixel pairs)."""
    codes = []
    top = int(index.max()) + 1 if index.size else 1
    for axis in range(index.ndim):
        a = np.moveaxis(index, axis, 0)
        lo, hi = a[:-1], a[1:]
        across = (lo != hi) & (lo > 0) & (hi > 0)
        first, second = lo[across].astype(np.int64), hi[across].astype(np.int64)
        codes.append(np.minimum(first, second) * top + np.maximum(first, second))
    if not codes:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty
    pairs, length = np.unique(np.concatenate(codes), return_counts=True)
    return pairs // top, pairs % top, length.astype(np.int64)


def cut_candidates(index: np.ndarray, count: int, contact: float) -> np.ndarray:
    """Disjoint pairs of rows (k, 2) of the objects 1..`count` of the compact label image
    `index` that touch along at least `contact` x sqrt(smaller area): the pairs a cut
    leaves. Where an object qualifies with several, the longest border relative to size
    wins (ties: lower rows first, so the choice does not depend on anything but the mask)."""
    a, b, length = shared_borders(index)
    if not len(a):
        return np.zeros((0, 2), np.int64)
    area = np.bincount(index.reshape(-1), minlength=count + 1)
    smaller = np.sqrt(np.minimum(area[a], area[b]).astype(np.float64))
    strength = length / smaller
    keep = strength >= contact
    a, b, strength = a[keep], b[keep], strength[keep]
    taken = np.zeros(count + 1, bool)
    chosen = []
    for k in np.lexsort((b, a, -strength)):
        if not taken[a[k]] and not taken[b[k]]:
            taken[a[k]] = taken[b[k]] = True
            chosen.append((a[k] - 1, b[k] - 1))
    return np.asarray(chosen, np.int64).reshape(-1, 2)


def merged_frame(index: np.ndarray, count: int, pairs: np.ndarray) -> tuple[np.ndarray, Unions]:
    """The label image with each pair of `pairs` (rows, from `cut_candidates`) painted as one
    object (the first piece's label), and the `Unions` relating its objects to the frame's.

    The merged image keeps the frame's label values (a piece's value is gone), so its
    objects, renumbered in label order, are the frame's cells in row order less the second
    pieces."""
    lut = np.arange(count + 1, dtype=index.dtype)
    lut[pairs[:, 1] + 1] = pairs[:, 0] + 1
    merged = lut[index]
    kept = np.ones(count, bool)
    kept[pairs[:, 1]] = False
    merged_row = np.flatnonzero(kept).astype(np.int64)
    union_of = np.full(count, -1, np.int64)
    union_of[pairs[:, 0]] = np.arange(len(pairs))
    first = union_of[merged_row] >= 0
    merged_row[first] = count + union_of[merged_row[first]]
    return merged, Unions(pairs, merged_row)
