"""Mask geometry the repairs measure with: sizes, nearest pixels, shifts, borders."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from inference.cells.borders import bounding_box, neighbour_pairs


def diameter(area: float, ndim: int) -> float:
    """The diameter of a disc (2D) or ball (3D) of `area` pixels or voxels."""
    if ndim == 2:
        return float(2 * np.sqrt(area / np.pi))
    return float(2 * np.cbrt(3 * area / (4 * np.pi)))


def nearer(cells: np.ndarray, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """The pixels of `cells` nearer to `first` than to `second` (Euclidean distance to the
    nearest pixel of each, measured in the bounding box of all three)."""
    box = bounding_box(cells | first | second)
    if not first[box].any() or not second[box].any():
        return np.zeros_like(cells)
    to_first = ndi.distance_transform_edt(~first[box])
    to_second = ndi.distance_transform_edt(~second[box])
    out = np.zeros_like(cells)
    out[box] = cells[box] & (to_first < to_second)
    return out


def shifted(cells: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """`cells` moved by `shift` pixels (what leaves the image is lost)."""
    out = np.zeros_like(cells)
    src, dst = [], []
    for s, size in zip(shift.tolist(), cells.shape, strict=True):
        s = max(-size, min(size, s))
        src.append(slice(max(0, -s), size - max(0, s)))
        dst.append(slice(max(0, s), size - max(0, -s)))
    out[tuple(dst)] = cells[tuple(src)]
    return out


def touching(mask: np.ndarray, label: int) -> tuple[int, int]:
    """The cell `label` shares its longest border with and that border's length in
    face-adjacent pixel pairs; (0, 0) when it touches none."""
    other, is_cell = neighbour_pairs(mask, label)
    if not is_cell.any():
        return 0, 0
    values, counts = np.unique(other[is_cell], return_counts=True)
    best = int(np.argmax(counts))
    return int(values[best]), int(counts[best])


def on_border(cells: np.ndarray, axes: tuple[int, ...] | None = None) -> bool:
    """Whether any pixel of `cells` lies on the image border (along `axes`; None: every
    axis)."""
    for axis in range(cells.ndim) if axes is None else axes:
        a = np.moveaxis(cells, axis, 0)
        if a[0].any() or a[-1].any():
            return True
    return False
