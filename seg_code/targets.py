"""Training targets from instance labels: background / cell / edge classes and a centre map.

Edges are the rim of every cell (against background or a touching neighbour); they are what
lets the network separate touching cells. The centre map is each cell's distance transform
scaled to 1 at its deepest point: its peaks become the seeds that split merged blobs.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

BACKGROUND, CELL, EDGE = 0, 1, 2


def _footprint(ndim: int, width: int) -> np.ndarray:
    """A disc of radius `width` in YX (one slice thick in z: stacks are anisotropic)."""
    r = np.arange(-width, width + 1)
    disc = (r[:, None] ** 2 + r[None, :] ** 2) <= width**2
    return disc if ndim == 2 else np.stack([np.zeros_like(disc), disc, np.zeros_like(disc)])


def class_map(labels: np.ndarray, edge_width: int = 1) -> np.ndarray:
    """uint8 map: 0 background, 1 cell, 2 cell pixels within `edge_width` of another label."""
    footprint = _footprint(labels.ndim, edge_width)
    grown = ndi.grey_dilation(labels, footprint=footprint)
    shrunk = ndi.grey_erosion(labels, footprint=footprint)
    edge = (labels > 0) & ((grown != labels) | (shrunk != labels))
    if labels.ndim == 3:  # touching in z also makes an edge, one slice deep
        zfp = np.zeros((3, 1, 1), bool)
        zfp[:, 0, 0] = True
        edge |= (labels > 0) & (
            (ndi.grey_dilation(labels, footprint=zfp) != labels)
            | (ndi.grey_erosion(labels, footprint=zfp) != labels)
        )
    out = np.where(labels > 0, CELL, BACKGROUND).astype(np.uint8)
    out[edge] = EDGE
    return out


def centre_map(labels: np.ndarray, sampling: tuple[float, ...] | None = None) -> np.ndarray:
    """float32 map in [0, 1]: per cell, distance to its border over the cell's largest distance."""
    out = np.zeros(labels.shape, np.float32)
    for label, box in enumerate(ndi.find_objects(labels), start=1):
        if box is None:
            continue
        box = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in box)
        cell = labels[box] == label
        dist = ndi.distance_transform_edt(cell, sampling=sampling)
        peak = dist.max()
        if peak > 0:
            region = out[box]
            region[cell] = (dist[cell] / peak).astype(np.float32)
    return out
