"""Where a cell's mask lies and what it touches: its bounding box, its centroid, the labels
across its border, the borders every two cells of a frame share. Shared by the repairs (cut
pieces, merges), the division features (how long a border two daughters share) and the
candidate cells (`inference.tracking.candidates`)."""

from __future__ import annotations

import numpy as np


def centroid(cells: np.ndarray) -> np.ndarray:
    """The mean pixel position of the boolean mask `cells`, one value per axis."""
    return np.array([c.mean() for c in np.nonzero(cells)])


def bounding_box(cells: np.ndarray) -> tuple[slice, ...]:
    """The bounding box of `cells`, grown by one pixel (projections, not a pixel list)."""
    box = []
    for axis, size in enumerate(cells.shape):
        other = tuple(a for a in range(cells.ndim) if a != axis)
        where = np.flatnonzero(cells.any(axis=other))
        box.append(slice(max(0, int(where[0]) - 1), min(size, int(where[-1]) + 2)))
    return tuple(box)


def neighbour_pairs(mask: np.ndarray, label: int) -> tuple[np.ndarray, np.ndarray]:
    """Per face-adjacent pixel pair with one side `label`: the label on the other side, and
    whether that is a cell (not background)."""
    cells = mask == label
    if not cells.any():
        return np.zeros(0, mask.dtype), np.zeros(0, bool)
    region = mask[bounding_box(cells)]
    others = []
    for axis in range(mask.ndim):
        a = np.moveaxis(region, axis, 0)
        lo, hi = a[:-1], a[1:]
        others.append(hi[(lo == label) & (hi != label)])
        others.append(lo[(hi == label) & (lo != label)])
    other = np.concatenate(others)
    return other, other > 0


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
