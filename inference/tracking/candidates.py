"""Candidate cells: the segmenter's cells offered to the solver in another form as well.

A segmenter that cuts a cell in two leaves two objects joined by a long border; one that
fuses two touching nuclei leaves an object with a neck. Besides the segmenter's cells, a
frame then holds an *alternative version*: the same label image with each candidate pair
painted as one object (a union) and each fused-looking object as two (a split). The GNN
scores the alternative frames' links in a second pass (so a union or a half is scored in a
graph where it stands in for the segmenter's cells, as any cell the network was trained
on), and the solver picks, per frame, the cells or each group's new cells, together with the
links (`inference.tracking.solve.solve_pair`). A cell cut in one frame and whole before and
after is then linked as one cell: no division, no track for the piece.

Only masks are needed: the pairs are the touching objects whose shared border is long for
their size (at least `contact` times the square root of the smaller one's area, in
face-adjacent pixel pairs; the cut test of the repairs, `RepairParams.cut_contact`), the
splits those whose watershed halves meet at a border shorter than that. Each object is in
at most one group, so one alternative frame holds every candidate and memory and time grow
by at most one frame's features.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi
from skimage.feature import peak_local_max
from skimage.segmentation import watershed

from inference.cells.borders import shared_borders

#: An object is offered split in two when it is at least this many times the frame's median
#: cell area (two fused cells are about twice a cell; a cell about to divide, up to ~1.8)
SPLIT_AREA = 1.4
#: ... and each half of the split is at least this share of it
SPLIT_SHARE = 0.25


@dataclass(frozen=True)
class Alternatives:
    """The candidate cells of one frame, against its cells (rows 0..n-1), in groups: group g
    would replace the cells `old[g]` (rows; -1 pads a group of one) by its new nodes
    `new[g]` (solver numbering from n; -1 pads). The first `n_unions` groups are unions (two
    pieces, one node), the rest splits (one object, two halves). The alternative frame holds
    every group's new nodes in place of its cells, and `merged_row[r]` names its row r in
    the solver's numbering: a cell's own row, or a new node; `labels[r]` is its label in
    the alternative frame's image.
    """

    old: np.ndarray  # (k, 2) int64
    new: np.ndarray  # (k, 2) int64
    merged_row: np.ndarray  # (m,) int64
    labels: np.ndarray  # (m,) int64: the alternative frame's label of each of its rows
    n_unions: int = 0

    def group_of(self, node: int) -> tuple[int, int]:
        """The group offering the new node `node`, and its place there (0 or 1)."""
        g, slot = np.argwhere(self.new == node)[0]
        return int(g), int(slot)

    @property
    def n_new(self) -> int:
        """How many new nodes the groups offer."""
        return int((self.new >= 0).sum())

    def __len__(self) -> int:
        return len(self.old)


@dataclass(frozen=True)
class Splits:
    """Objects offered split in two: their rows, and per object the box it lies in and its
    second half there (the first half is the rest of it)."""

    rows: np.ndarray  # (s,) int64
    halves: list[tuple[tuple[slice, ...], np.ndarray]]

    def __len__(self) -> int:
        return len(self.rows)


NO_SPLITS = Splits(np.zeros(0, np.int64), [])


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


def split_candidates(index: np.ndarray, count: int, contact: float, exclude: np.ndarray) -> Splits:
    """Objects of the compact label image `index` (1..`count`) that look like two cells
    fused: at least `SPLIT_AREA` times the median object, split by a watershed of their
    distance map from its two highest peaks into halves of at least `SPLIT_SHARE` each that
    share a border shorter than `contact` x sqrt(smaller half): a neck, where a cut's
    pieces share a long border (`cut_candidates`). Rows in `exclude` (pieces of a union)
    are not offered."""
    area = np.bincount(index.reshape(-1), minlength=count + 1)[1:]
    present = area[area > 0]
    if not len(present):
        return NO_SPLITS
    big = np.flatnonzero(area >= SPLIT_AREA * float(np.median(present)))
    big = big[~np.isin(big, exclude)]
    rows, halves = [], []
    boxes = ndi.find_objects(index, max_label=count) if len(big) else []
    for row in big.tolist():
        box = boxes[row]
        cells = index[box] == row + 1
        second = _second_half(cells, contact)
        if second is not None:
            rows.append(row)
            halves.append((box, second))
    return Splits(np.asarray(rows, np.int64), halves)


def _second_half(cells: np.ndarray, contact: float) -> np.ndarray | None:
    """The second half of `cells` split at a neck (see `split_candidates`), or None."""
    dist = ndi.distance_transform_edt(np.pad(cells, 1))[(slice(1, -1),) * cells.ndim]
    radius = float(dist.max())
    ball = np.pi * radius**2 if cells.ndim == 2 else 4 / 3 * np.pi * radius**3
    if cells.sum() < SPLIT_AREA * ball:
        return None  # about the largest disc it holds: one round cell, whatever its size
    peaks = peak_local_max(
        dist, min_distance=max(2, int(0.6 * radius)), num_peaks=2, exclude_border=False
    )
    if len(peaks) < 2:
        return None
    markers = np.zeros(cells.shape, np.int32)
    markers[tuple(peaks[0])], markers[tuple(peaks[1])] = 1, 2
    halves = watershed(-dist, markers, mask=cells)
    sizes = np.bincount(halves.reshape(-1), minlength=3)[1:]
    if sizes.min() < SPLIT_SHARE * sizes.sum():
        return None
    _, _, neck = shared_borders(halves)
    if neck.sum() >= contact * np.sqrt(sizes.min()):
        return None
    return halves == 2


def alternative_frame(
    index: np.ndarray, count: int, pairs: np.ndarray, splits: Splits = NO_SPLITS
) -> tuple[np.ndarray, Alternatives]:
    """The label image with each pair of `pairs` (rows, from `cut_candidates`) painted as
    one object (the first piece's label) and each object of `splits` as two (its own label
    and a new one above `count`), and the `Alternatives` relating its objects to the
    frame's.

    Its objects, renumbered in label order, are the frame's cells in row order less the
    second pieces (a union in its first piece's place, a split's first half in the object's
    place), then the splits' second halves in split order."""
    lut = np.arange(count + 1, dtype=index.dtype)
    lut[pairs[:, 1] + 1] = pairs[:, 0] + 1
    merged = lut[index]
    for s, (box, second) in enumerate(splits.halves):
        merged[box][second] = count + 1 + s
    n_u, n_s = len(pairs), len(splits)
    node = np.arange(count, dtype=np.int64)
    node[pairs[:, 0]] = count + np.arange(n_u)
    node[splits.rows] = count + n_u + 2 * np.arange(n_s)
    kept = np.ones(count, bool)
    kept[pairs[:, 1]] = False
    merged_row = np.concatenate([node[kept], count + n_u + 2 * np.arange(n_s) + 1])
    labels = np.concatenate([np.flatnonzero(kept) + 1, count + 1 + np.arange(n_s)])
    old = np.concatenate([pairs, np.stack([splits.rows, np.full(n_s, -1)], axis=1)])
    new = np.concatenate(
        [
            np.stack([count + np.arange(n_u), np.full(n_u, -1)], axis=1),
            count + n_u + np.stack([2 * np.arange(n_s), 2 * np.arange(n_s) + 1], axis=1),
        ]
    )
    groups = Alternatives(
        old.astype(np.int64), new.astype(np.int64), merged_row, labels.astype(np.int64), n_u
    )
    return merged, groups
