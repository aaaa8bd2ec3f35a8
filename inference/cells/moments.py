"""Per-cell pixel statistics in one pass over a frame (numba), for `inference.cells.features`.

Area, coordinate sums and second moments, bounding box and intensity sum, square sum, min and
max of every label of a compact index image; 2D frames have a loop of their own that skips
the z terms (about 40% faster, same numbers as treating them as one-slice 3D frames).
One compiled loop over the pixels replaces a dozen numpy passes and a sort: under 1 ms for a
512x512 frame. Compiled once per image type and cached on disk.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np


@dataclass(frozen=True)
class Moments:
    """Statistics of n cells; coordinates are (z, y, x) with z = 0 for 2D frames."""

    area: np.ndarray  # (n,)
    sums: np.ndarray  # (n, 3): sum of z, y, x
    products: np.ndarray  # (n, 3, 3): sum of z*z, z*y, ...
    box_min: np.ndarray  # (n, 3) inclusive
    box_max: np.ndarray  # (n, 3) exclusive
    value_sum: np.ndarray
    value_squares: np.ndarray
    value_min: np.ndarray
    value_max: np.ndarray


@numba.njit(cache=True, nogil=True)
def _zeroed(n):  # pragma: no cover - compiled
    """Empty accumulators for `n` cells: area, sums, products, box min/max, intensity stats."""
    area = np.zeros(n)
    sums = np.zeros((n, 3))
    products = np.zeros((n, 3, 3))
    box_min = np.full((n, 3), 1 << 30, np.int64)
    box_max = np.full((n, 3), -1, np.int64)
    stats = np.zeros((n, 4))  # sum, sum of squares, min, max
    stats[:, 2] = np.inf
    stats[:, 3] = -np.inf
    return area, sums, products, box_min, box_max, stats


@numba.njit(cache=True, nogil=True)
def _accumulate(index, image, n):  # pragma: no cover - compiled
    area, sums, products, box_min, box_max, stats = _zeroed(n)
    depth, height, width = index.shape
    for z in range(depth):
        for y in range(height):
            for x in range(width):
                k = index[z, y, x] - 1
                if k < 0:
                    continue
                v = float(image[z, y, x])
                c = (float(z), float(y), float(x))
                area[k] += 1.0
                for i in range(3):
                    sums[k, i] += c[i]
                    for j in range(3):
                        products[k, i, j] += c[i] * c[j]
                box_min[k, 0] = min(box_min[k, 0], z)
                box_min[k, 1] = min(box_min[k, 1], y)
                box_min[k, 2] = min(box_min[k, 2], x)
                box_max[k, 0] = max(box_max[k, 0], z + 1)
                box_max[k, 1] = max(box_max[k, 1], y + 1)
                box_max[k, 2] = max(box_max[k, 2], x + 1)
                stats[k, 0] += v
                stats[k, 1] += v * v
                stats[k, 2] = min(stats[k, 2], v)
                stats[k, 3] = max(stats[k, 3], v)
    return area, sums, products, box_min, box_max, stats


@numba.njit(cache=True, nogil=True)
def _accumulate_2d(index, image, n):  # pragma: no cover - compiled
    """`_accumulate` of a 2D frame without the terms that are 0 (z) or repeated (x y).

    `cell_moments` fills those in; kept out of here as array expressions compile slowly.
    """
    area, sums, products, box_min, box_max, stats = _zeroed(n)
    height, width = index.shape
    for y in range(height):
        fy = float(y)
        for x in range(width):
            k = index[y, x] - 1
            if k < 0:
                continue
            v = float(image[y, x])
            fx = float(x)
            area[k] += 1.0
            sums[k, 1] += fy
            sums[k, 2] += fx
            products[k, 1, 1] += fy * fy
            products[k, 1, 2] += fy * fx
            products[k, 2, 2] += fx * fx
            box_min[k, 1] = min(box_min[k, 1], y)
            box_min[k, 2] = min(box_min[k, 2], x)
            box_max[k, 1] = max(box_max[k, 1], y + 1)
            box_max[k, 2] = max(box_max[k, 2], x + 1)
            stats[k, 0] += v
            stats[k, 1] += v * v
            stats[k, 2] = min(stats[k, 2], v)
            stats[k, 3] = max(stats[k, 3], v)
    return area, sums, products, box_min, box_max, stats


def cell_moments(index: np.ndarray, image: np.ndarray, n: int) -> Moments:
    """Statistics of the labels 1..n of `index` (2D or 3D) over the pixels of `image`."""
    index = np.ascontiguousarray(index)
    image = np.ascontiguousarray(image.reshape(index.shape))
    if image.dtype.kind not in "uif" or image.dtype.itemsize > 8:
        image = image.astype(np.float64)
    if index.ndim == 3:
        area, sums, products, box_min, box_max, stats = _accumulate(index, image, n)
    else:
        area, sums, products, box_min, box_max, stats = _accumulate_2d(index, image, n)
        products[:, 2, 1] = products[:, 1, 2]
        present = area > 0  # labels with pixels span slice z = 0, as a one-slice 3D frame
        box_min[:, 0], box_max[:, 0] = np.where(present, 0, 1 << 30), np.where(present, 1, -1)
    return Moments(area, sums, products, box_min, box_max, *stats.T)
