"""Fixed-size cell crops for the appearance embedding (2D and 3D).

As in the published method, a crop shows one cell only (pixels of other cells and of the
background set to 0), intensities rescaled to 0..1 (clipped at 2) and lifted by 0.1 so that
the cell's silhouette shows even where it is dark. Two deliberate differences: the rescaling
uses the percentiles of the cell pixels of the *current frame* (so frames can be streamed and
bleaching does not shift the input), and every crop is cut as a fixed window of `extent`
pixels around the cell (larger cells: their bounding box) before being resized to `size`, so
the network sees cell size as it is.
"""

from __future__ import annotations

import numba
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from inference.features import AXES, CompactLabels


def intensity_range(image: np.ndarray, compact: CompactLabels) -> tuple[float, float]:
    """1st and 99.5th percentile of the cell pixels of a frame (0, 1 when there are none)."""
    values = image[compact.index > 0]
    if values.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(values, [1.0, 99.5])
    return float(lo), float(max(hi, lo + 1e-6))


def _windows(table: pd.DataFrame, extent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    axes = AXES[len(extent)]
    bmin = table[[f"bbox_min_{a}" for a in axes]].to_numpy(np.int64)
    bmax = table[[f"bbox_max_{a}" for a in axes]].to_numpy(np.int64)
    side = np.maximum(extent[None, :], bmax - bmin)
    start = (bmin + bmax) // 2 - side // 2
    return start, side


def cell_crops(
    image: np.ndarray,
    compact: CompactLabels,
    table: pd.DataFrame,
    extent: tuple[int, ...],
    size: tuple[int, ...],
) -> np.ndarray:
    """Crops of the cells of `table` (rows in `compact` order), shape (n, *size), float32.

    `table` is `frame_features` of the same frame; `extent` is the window cut around each
    cell in pixels, `size` the crop size the network takes.
    """
    n = len(table)
    out = np.zeros((n, *size), np.float32)
    if n == 0:
        return out
    lo, hi = intensity_range(image, compact)
    start, side = _windows(table, np.asarray(extent, np.int64))
    pad = (1,) if image.ndim == 2 else ()
    index3 = compact.index.reshape(pad + compact.index.shape)
    image3 = image.reshape(index3.shape)
    groups: dict[tuple[int, ...], list[int]] = {}
    for k in range(n):
        groups.setdefault(tuple(side[k]), []).append(k)
    for shape_key, members in groups.items():
        cells = np.asarray(members, np.int64)
        starts = np.zeros((len(cells), 3), np.int64)
        starts[:, 3 - image.ndim :] = start[cells]
        window = np.asarray(pad + shape_key, np.int64)
        cut = _cut(index3, image3, cells, starts, window, lo, 1.0 / (hi - lo))
        batch = torch.from_numpy(cut.reshape(len(cells), 1, *shape_key))
        out[members] = _resize(batch, tuple(size))[:, 0].numpy()
    return out


@numba.njit(cache=True, nogil=True)
def _cut(index, image, cells, starts, side, lo, scale):  # pragma: no cover - compiled
    """Windows (n, *side) around cells: their own pixels rescaled and lifted, others 0."""
    out = np.zeros((len(cells), side[0], side[1], side[2]), np.float32)
    depth, height, width = index.shape
    for n in range(len(cells)):
        label = cells[n] + 1
        for a in range(side[0]):
            z = starts[n, 0] + a
            if z < 0 or z >= depth:
                continue
            for b in range(side[1]):
                y = starts[n, 1] + b
                if y < 0 or y >= height:
                    continue
                for c in range(side[2]):
                    x = starts[n, 2] + c
                    if 0 <= x < width and index[z, y, x] == label:
                        value = (float(image[z, y, x]) - lo) * scale
                        out[n, a, b, c] = 0.1 + min(max(value, 0.0), 2.0)
    return out


def _resize(batch: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    """Resize (n, 1, *window) to (n, 1, *size): area averaging down, linear up."""
    if tuple(batch.shape[2:]) == size:
        return batch
    if all(w >= s for w, s in zip(batch.shape[2:], size, strict=True)):
        pool = F.adaptive_avg_pool2d if len(size) == 2 else F.adaptive_avg_pool3d
        return pool(batch, size)
    mode = "bilinear" if len(size) == 2 else "trilinear"
    return F.interpolate(batch, size=size, mode=mode, align_corners=False)


def crop_geometry(tables: list[pd.DataFrame], ndim: int, size: int = 32) -> dict[str, list[int]]:
    """Crop `extent` and `size` learned from cell tables: the window holds 95% of cells whole.

    In 3D the depth of the crop follows the cells' depth (at most `size`), in plane it is `size`.
    """
    axes = AXES[ndim]
    table = pd.concat(tables, ignore_index=True)
    if table.empty:
        extent = [size] * ndim
    else:
        spans = np.stack([table[f"bbox_max_{a}"] - table[f"bbox_min_{a}"] for a in axes], 1)
        plane = int(np.ceil(np.percentile(spans[:, -2:].max(axis=1), 95) * 1.2)) + 2
        extent = [plane] * 2
        if ndim == 3:
            extent = [int(np.ceil(np.percentile(spans[:, 0], 95) * 1.2)) + 2, *extent]
    crop = [size] * 2 if ndim == 2 else [int(min(size, max(4, extent[0]))), size, size]
    return {"extent": extent, "size": crop}
