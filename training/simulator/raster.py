"""Draw the cells of one frame into a label map and a noise-free fluorescence image.

Each cell is evaluated only in its bounding box. Where cells overlap, a pixel goes to the cell
whose own normalised radius is smallest there (a shape-aware Voronoi split), so touching cells
meet along a clean boundary, a cell always keeps its centre, and the result does not depend
on drawing order. A label is then cut to its largest connected piece (the CTC wants one object
per label), and cells with too few pixels in the field are dropped from both the label map and
the image, so the ground truth and the picture always agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from training.simulator.population import Cells
from training.simulator.shapes import bounding_radius, edge_profile, normalised_radius, texture


@dataclass
class Frame:
    """One rendered frame before optics: who owns each pixel, and how bright it glows."""

    owner: np.ndarray  # int32: 0 background, i + 1 = row i of the cells
    signal: np.ndarray  # float32 fluorescence, no blur and no noise
    area: np.ndarray  # pixels (voxels) of each cell in the field after clean-up

    def visible(self) -> np.ndarray:
        """Rows of the cells that are in the ground truth of this frame."""
        return np.flatnonzero(self.area > 0)


def _box(
    centre: np.ndarray, reach: float, spacing: np.ndarray, shape: tuple[int, ...]
) -> tuple[slice, ...] | None:
    lo = np.maximum(np.floor((centre - reach) / spacing).astype(int), 0)
    hi = np.minimum(np.ceil((centre + reach) / spacing).astype(int) + 1, shape)
    if np.any(hi <= lo):
        return None
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))


def rasterise(
    cells: Cells,
    shape: tuple[int, ...],
    spacing: np.ndarray,
    texture_strength: float,
    min_area: int,
    core: float = 0.0,
) -> Frame:
    """Label map and signal of `cells` in a field of `shape` pixels with voxel size `spacing`.

    `texture_strength` and `core` are the preset's `texture` and `core` (stain profile)."""
    owner = np.zeros(shape, np.int32)
    best = np.full(shape, np.inf, np.float32)
    signal = np.zeros(shape, np.float32)
    semi = cells.semi_axes()
    reach = bounding_radius(semi, cells.harm_amp) + 1.0
    boxes: list[tuple[slice, ...] | None] = []
    for i in range(len(cells)):
        box = _box(cells.pos[i], reach[i], spacing, shape)
        boxes.append(box)
        if box is None:
            continue
        axes = [
            (np.arange(s.start, s.stop) * sp - c).astype(np.float32)
            for s, sp, c in zip(box, spacing, cells.pos[i], strict=True)
        ]
        grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, len(shape))
        e = grid @ (cells.rot[i] / semi[i]).astype(np.float32)
        # only points inside the largest possible boundary need the exact shape
        near = np.einsum("pd,pd->p", e, e) < np.exp(2 * np.abs(cells.harm_amp[i]).sum())
        rho = np.full(len(e), np.inf, np.float32)
        rho[near] = normalised_radius(
            e[near], cells.harm_dir[i], cells.harm_freq[i], cells.harm_phase[i], cells.harm_amp[i]
        )
        rho = rho.reshape(owner[box].shape)
        take = rho < np.minimum(best[box], 1.0)
        if not take.any():
            continue
        flat = take.ravel()
        value = (
            texture(
                e[flat],
                texture_strength,
                cells.tex[i],
                cells.tex_shift[i],
                cells.spot_pos[i],
                cells.spot_size[i],
                cells.spot_amp[i],
            )
            * edge_profile(rho[take], core)
            * (cells.brightness[i] * cells.glow[i])
        )
        best[box][take] = rho[take]
        owner[box][take] = i + 1
        signal[box][take] = value
    frame = Frame(owner, signal, _clean(owner, signal, boxes))
    _drop_small(frame, min_area)
    return frame


def _clean(
    owner: np.ndarray, signal: np.ndarray, boxes: list[tuple[slice, ...] | None]
) -> np.ndarray:
    """Keep each label's largest connected piece; return the area of every cell."""
    area = np.zeros(len(boxes), np.int64)
    for i, box in enumerate(boxes):
        if box is None:
            continue
        mine = owner[box] == i + 1
        pieces, count = ndi.label(mine)
        if count > 1:
            sizes = np.bincount(pieces.ravel())
            sizes[0] = 0
            drop = mine & (pieces != int(np.argmax(sizes)))
            owner[box][drop] = 0
            signal[box][drop] = 0.0
            mine &= ~drop
        area[i] = int(mine.sum())
    return area


def _drop_small(frame: Frame, min_area: int) -> None:
    """Erase cells with fewer than `min_area` pixels in the field from labels and signal."""
    small = np.flatnonzero((frame.area > 0) & (frame.area < min_area))
    if small.size == 0:
        return
    lut = np.ones(len(frame.area) + 1, bool)
    lut[small + 1] = False
    keep = lut[frame.owner]
    frame.owner[~keep] = 0
    frame.signal[~keep] = 0.0
    frame.area[small] = 0
