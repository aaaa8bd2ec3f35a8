"""Fixed-size cell crops for the appearance embedding (2D and 3D).

As in the published method, a crop shows one cell only (pixels of other cells and of the
background set to 0), intensities rescaled to 0..1 (clipped at 2) and lifted by 0.1 so that
the cell's silhouette shows even where it is dark. Two deliberate differences: the rescaling
uses the percentiles of the cell pixels of the *current frame* (so frames can be streamed and
bleaching does not shift the input), and every crop is cut as a fixed window of `extent`
pixels around the cell (larger cells: their bounding box) before being resized to `size`, so
the network sees cell size as it is.

Cutting and area-averaging are one compiled pass per cell that visits only the cell's
bounding box; it reproduces torch's adaptive average pooling term for term (so crops are
the same to the last bit as cutting the window and pooling it with torch).
"""

from __future__ import annotations

import numba
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from inference.cells.features import AXES, CompactLabels


def intensity_range(image: np.ndarray, compact: CompactLabels) -> tuple[float, float]:
    """1st and 99.5th percentile of the cell pixels of a frame (0, 1 when there are none)."""
    values = image[compact.index > 0]
    if values.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(values, [1.0, 99.5])
    return float(lo), float(max(hi, lo + 1e-6))


def _boxes(table: pd.DataFrame, ndim: int) -> tuple[np.ndarray, np.ndarray]:
    """Bounding boxes (n, 3) as (z, y, x), inclusive min and exclusive max (2D: z in 0..1)."""
    bmin, bmax = np.zeros((len(table), 3), np.int64), np.ones((len(table), 3), np.int64)
    for k, axis in enumerate(AXES[ndim], start=3 - ndim):
        bmin[:, k] = table[f"bbox_min_{axis}"].to_numpy(np.int64)
        bmax[:, k] = table[f"bbox_max_{axis}"].to_numpy(np.int64)
    return bmin, bmax


def _windows(
    bmin: np.ndarray, bmax: np.ndarray, extent: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Start and side (n, 3) of each cell's window: `extent` around it, or its whole box."""
    side = np.maximum(extent[None, :], bmax - bmin)
    start = (bmin + bmax) // 2 - side // 2
    return start, side


def cell_crops(
    image: np.ndarray,
    compact: CompactLabels,
    table: pd.DataFrame,
    extent: tuple[int, ...],
    size: tuple[int, ...],
    value_range: tuple[float, float] | None = None,
) -> np.ndarray:
    """Crops of the cells of `table` (rows in `compact` order), shape (n, *size), float32.

    `table` is `frame_features` of the same frame; `extent` is the window cut around each
    cell in pixels, `size` the crop size the network takes. `value_range` is the frame's
    `intensity_range` where `compact` holds only some of its cells (default: measured on
    `compact`).
    """
    n = len(table)
    out = np.zeros((n, *size), np.float32)
    if n == 0:
        return out
    lo, hi = value_range if value_range is not None else intensity_range(image, compact)
    scale = 1.0 / (hi - lo)
    pad = (1,) * (3 - image.ndim)
    bmin, bmax = _boxes(table, image.ndim)
    start, side = _windows(bmin, bmax, np.asarray(pad + tuple(extent), np.int64))
    index3 = compact.index.reshape(pad + compact.index.shape)
    image3 = image.reshape(index3.shape)
    size3 = np.asarray(pad + tuple(size), np.int64)
    shrink = (side >= size3).all(axis=1)  # area averaging; otherwise linear interpolation
    if shrink.any():
        cells = np.flatnonzero(shrink)
        pooled = _cut_pooled(index3, image3, cells, start, side, bmin, bmax, size3, lo, scale)
        out[cells] = pooled.reshape(len(cells), *size)
    groups: dict[tuple[int, ...], list[int]] = {}
    for k in np.flatnonzero(~shrink).tolist():
        groups.setdefault(tuple(side[k]), []).append(k)
    for shape_key, members in groups.items():
        cells = np.asarray(members, np.int64)
        cut = _cut(index3, image3, cells, start, np.asarray(shape_key), bmin, bmax, lo, scale)
        batch = torch.from_numpy(cut.reshape(len(cells), 1, *shape_key[3 - image.ndim :]))
        out[members] = _resize(batch, tuple(size))[:, 0].numpy()
    return out


@numba.njit(cache=True, nogil=True)
def _cut(index, image, cells, start, side, bmin, bmax, lo, scale):  # pragma: no cover
    """Windows (n, *side) around `cells`: their own pixels rescaled and lifted, others 0."""
    out = np.zeros((len(cells), side[0] * side[1] * side[2]), np.float32)
    for n in range(len(cells)):
        k = cells[n]
        _cut_one(index, image, k + 1, start[k], side, bmin[k], bmax[k], out[n], lo, scale)
    return out


@numba.njit(cache=True, nogil=True)
def _cut_one(index, image, label, start, side, bmin, bmax, out, lo, scale):  # pragma: no cover
    """Fill `out`, a zeroed flat window of shape `side` at `start`, with `label`'s pixels.

    Only the label's box (bmin..bmax) is visited; its pixels are rescaled and lifted.
    """
    for z in range(max(bmin[0], start[0]), min(bmax[0], start[0] + side[0])):
        for y in range(max(bmin[1], start[1]), min(bmax[1], start[1] + side[1])):
            row = ((z - start[0]) * side[1] + y - start[1]) * side[2] - start[2]
            for x in range(max(bmin[2], start[2]), min(bmax[2], start[2] + side[2])):
                if index[z, y, x] == label:
                    value = (float(image[z, y, x]) - lo) * scale
                    out[row + x] = 0.1 + min(max(value, 0.0), 2.0)


@numba.njit(cache=True, nogil=True)
def _cut_pooled(index, image, cells, start, side, bmin, bmax, size, lo, scale):  # pragma: no cover
    """`_cut` of each of `cells` (windows at least `size`) area-averaged down to `size`.

    As torch's adaptive average pooling: output i of an axis of length L averages inputs
    floor(i L / s) to ceil((i + 1) L / s) - 1, summed in float32 in row-major order and
    divided by the span axis by axis. Outputs whose span misses the cell's box stay 0.
    """
    out = np.zeros((len(cells), size[0] * size[1] * size[2]), np.float32)
    window = np.zeros(1, np.float32)
    for n in range(len(cells)):
        k = cells[n]
        sd, sh, sw = side[k, 0], side[k, 1], side[k, 2]
        if window.size < sd * sh * sw:
            window = np.zeros(sd * sh * sw, np.float32)
        window[:] = 0.0
        _cut_one(index, image, k + 1, start[k], side[k], bmin[k], bmax[k], window, lo, scale)
        lo_d, lo_h, lo_w = (
            bmin[k, 0] - start[k, 0],
            bmin[k, 1] - start[k, 1],
            bmin[k, 2] - start[k, 2],
        )
        hi_d, hi_h, hi_w = (
            bmax[k, 0] - start[k, 0],
            bmax[k, 1] - start[k, 1],
            bmax[k, 2] - start[k, 2],
        )
        for od in range(size[0]):
            d0, d1 = (od * sd) // size[0], ((od + 1) * sd + size[0] - 1) // size[0]
            if d1 <= lo_d or d0 >= hi_d:
                continue  # the span misses the cell: all zeros
            for oh in range(size[1]):
                h0, h1 = (oh * sh) // size[1], ((oh + 1) * sh + size[1] - 1) // size[1]
                if h1 <= lo_h or h0 >= hi_h:
                    continue
                for ow in range(size[2]):
                    w0, w1 = (ow * sw) // size[2], ((ow + 1) * sw + size[2] - 1) // size[2]
                    if w1 <= lo_w or w0 >= hi_w:
                        continue
                    total = np.float32(0.0)
                    for a in range(d0, d1):
                        for b in range(h0, h1):
                            row = (a * sh + b) * sw
                            for c in range(w0, w1):
                                total += window[row + c]
                    total = total / np.float32(d1 - d0)
                    total = total / np.float32(h1 - h0)
                    out[n, (od * size[1] + oh) * size[2] + ow] = total / np.float32(w1 - w0)
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
