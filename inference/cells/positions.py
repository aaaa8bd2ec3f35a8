"""Where each cell of a label-mask sequence is: one row per cell and frame (centroid, size).

The report, the movie and the exports all need cell positions but none of the tracker's
features, so this is one cheap pass per frame (bincounts over the labelled pixels).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

#: Axis names of 2D (YX) and 3D (ZYX) frames.
AXES = {2: ("y", "x"), 3: ("z", "y", "x")}


def frame_positions(mask: np.ndarray, frame: int) -> pd.DataFrame:
    """Columns t, label, (z,) y, x (centroid, in pixels), area: one row per label of `mask`."""
    axes = AXES[mask.ndim]
    flat = np.flatnonzero(mask)
    labels = mask.ravel()[flat].astype(np.int64)
    present, inverse = np.unique(labels, return_inverse=True)
    area = np.bincount(inverse, minlength=len(present)).astype(np.float64)
    coords = np.unravel_index(flat, mask.shape)
    data: dict[str, np.ndarray] = {
        "t": np.full(len(present), frame, np.int64),
        "label": present,
    }
    for name, coord in zip(axes, coords, strict=True):
        sums = np.bincount(inverse, weights=coord, minlength=len(present))
        data[name] = sums / np.maximum(area, 1)
    data["area"] = area.astype(np.int64)
    return pd.DataFrame(data)


def sequence_positions(masks: Iterable[np.ndarray]) -> pd.DataFrame:
    """`frame_positions` of every frame of a sequence, streamed, as one table."""
    tables = [frame_positions(mask, t) for t, mask in enumerate(masks)]
    if not tables:
        return pd.DataFrame({"t": [], "label": [], "y": [], "x": [], "area": []})
    return pd.concat(tables, ignore_index=True)


def position_columns(table: pd.DataFrame) -> list[str]:
    """The coordinate columns of a position table: ['y', 'x'] or ['z', 'y', 'x']."""
    return [name for name in ("z", "y", "x") if name in table.columns]
