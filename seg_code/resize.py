"""Resampling between a frame's pixel grid and the grid the network works on.

Large nuclei need no full resolution: a model may run at `scale` < 1 in YX (z untouched),
which is ~1/scale^2 times cheaper; its probabilities are resampled back to the frame's grid
before post-processing, so masks keep the frame's resolution.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F


def scaled_shape(shape: tuple[int, ...], scale: float) -> tuple[int, ...]:
    """The network-grid shape of a frame of `shape` (YX scaled, z kept)."""
    lead = len(shape) - 2
    return tuple(shape[:lead]) + tuple(max(1, int(round(s * scale))) for s in shape[lead:])


def resample(channels: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """(C, *spatial) float array linearly resampled to (C, *shape)."""
    if tuple(channels.shape[1:]) == tuple(shape):
        return channels
    mode = "bilinear" if len(shape) == 2 else "trilinear"
    x = torch.from_numpy(np.ascontiguousarray(channels, dtype=np.float32))[None]
    return F.interpolate(x, size=tuple(shape), mode=mode, align_corners=False)[0].numpy()
