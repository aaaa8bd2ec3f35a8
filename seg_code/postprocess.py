"""From per-pixel probabilities to instance labels (the published entry's recipe, tunable).

Cells are "cell" pixels with low edge probability; blobs that hold several centres are split
by a seeded watershed; edge pixels near a cell are given to it; small pieces are dropped and
labels are made consecutive. Every threshold is a field of `PostprocessParams`, stored in the
model's config and overridable on the command line.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi
from skimage.morphology import h_maxima
from skimage.segmentation import relabel_sequential, watershed

from inference.config import flag, integer, load_section, number, setting

_P = number(0.0, 1.0)  # a probability threshold


@dataclass(frozen=True)
class PostprocessParams:
    """Thresholds turning probability maps into cells (the `postprocess` section of a
    segmentation model's config.json; `inference.config` checks it on load)."""

    cell_threshold: float = setting(_P, 0.5)  # min P(cell) of a core pixel
    edge_threshold: float = setting(_P, 0.5)  # max P(edge) of a core pixel
    foreground_threshold: float = setting(_P, 0.5)  # min P(cell) + P(edge) of any cell pixel
    centre_threshold: float = setting(_P, 0.5)  # min centre probability of a seed pixel
    min_centre_size: int = setting(integer(0), 10)  # pixels (voxels) a seed needs
    # > 0: a seed holding centre peaks this prominent is split
    centre_split: float = setting(number(0.0, 1.0), 0.0)
    edge_distance: int = setting(integer(0), 3)  # edge pixels this far (px) from a core join it
    # cells take all foreground connected to them; cells with no core (thin ones, all
    # "edge") are kept: for whole cells with long protrusions
    whole_foreground: bool = setting(flag(), False)
    min_cell_size: int = setting(integer(0), 50)  # smaller cells are dropped
    # drop cells lying entirely within this many px of the image edge
    border_margin: int = setting(integer(0), 0)

    @classmethod
    def from_dict(cls, values: dict, source: Path | None = None) -> PostprocessParams:
        """Checked thresholds: an unknown key or a bad value is a CTCError naming `source`."""
        return load_section(cls, values, source, "postprocess")

    def to_dict(self) -> dict:
        return asdict(self)


def labels_from_probabilities(
    p_cell: np.ndarray, p_edge: np.ndarray, p_centre: np.ndarray, params: PostprocessParams
) -> np.ndarray:
    """Instance labels (uint16, 0 = background, consecutive) from the three probability maps."""
    foreground = (p_cell + p_edge) > params.foreground_threshold
    core = (p_cell > params.cell_threshold) & (p_edge < params.edge_threshold)
    core_labels, n_core = ndi.label(core)
    if n_core == 0:
        return np.zeros(p_cell.shape, np.uint16)

    seeds, n_seeds = ndi.label(p_centre > params.centre_threshold)
    if n_seeds and params.centre_split > 0:
        seeds = _split_seeds(seeds, p_centre, params.centre_split)
    if n_seeds:
        sizes = np.bincount(seeds.ravel())
        seeds[sizes[seeds] < params.min_centre_size] = 0
        seeds[core_labels == 0] = 0  # a seed must sit in a core
    # Cores without any seed become one cell each; those with seeds are split between them.
    has_seed = np.zeros(n_core + 1, bool)
    has_seed[np.unique(core_labels[seeds > 0])] = True
    markers = seeds.astype(np.int64)
    offset = int(markers.max()) + 1
    unseeded = (core_labels > 0) & ~has_seed[core_labels]
    markers[unseeded] = core_labels[unseeded] + offset
    cells = watershed(-p_centre, markers, mask=core)

    if params.whole_foreground:
        return _clean(_grow_through_foreground(cells, foreground), params)
    # Give edge/foreground pixels near a cell to that cell.
    if params.edge_distance > 0:
        dist, nearest = ndi.distance_transform_edt(cells == 0, return_indices=True)
        grow = foreground & (cells == 0) & (dist <= params.edge_distance)
        cells[grow] = cells[tuple(idx[grow] for idx in nearest)]
    return _clean(cells, params)


def _grow_through_foreground(cells: np.ndarray, foreground: np.ndarray) -> np.ndarray:
    """Cells grown over every foreground pixel connected to them (nearest cell first), and
    foreground pieces that reached no cell made cells of their own.

    Whole-cell data (Fluo-C2DL-MSC) has protrusions a few pixels wide: the network calls
    them "edge" throughout, so they hold no core and a fixed growth distance cuts them off.
    """
    foreground = foreground | (cells > 0)
    pieces, n = ndi.label(foreground)
    orphans = np.setdiff1d(np.arange(1, n + 1), np.unique(pieces[cells > 0]))
    markers = cells.astype(np.int64)
    if orphans.size:
        orphan = np.isin(pieces, orphans)
        markers[orphan] = pieces[orphan] + int(markers.max())
    distance = ndi.distance_transform_edt(markers == 0)
    return watershed(distance, markers, mask=foreground)


def _split_seeds(seeds: np.ndarray, p_centre: np.ndarray, prominence: float) -> np.ndarray:
    """Seeds split between the centre map's peaks of at least `prominence` inside them.

    Two touching nuclei whose centres blur into one thresholded seed (faint GOWT1 pairs)
    keep two peaks with a saddle between them; each peak then seeds its own cell.
    """
    peaks, n_peaks = ndi.label(h_maxima(p_centre, prominence) & (seeds > 0))
    if n_peaks <= int(seeds.max()):
        return seeds
    # seeds without a prominent peak keep their own label, after the peaks'
    lost = (seeds > 0) & ~np.isin(seeds, np.unique(seeds[peaks > 0]))
    markers = peaks.astype(np.int64)
    markers[lost] = seeds[lost] + n_peaks
    return watershed(-p_centre, markers, mask=seeds > 0)


def _clean(cells: np.ndarray, params: PostprocessParams) -> np.ndarray:
    """One connected piece per label, size and border filters, consecutive uint16 labels."""
    out = np.zeros(cells.shape, np.int64)
    for label, box in enumerate(ndi.find_objects(cells), start=1):
        if box is None:
            continue
        mask = cells[box] == label
        pieces, n = ndi.label(mask)
        if n > 1:
            sizes = np.bincount(pieces.ravel())
            sizes[0] = 0
            mask = pieces == int(sizes.argmax())
        if mask.sum() < params.min_cell_size:
            continue
        if params.border_margin and _within_margin(box, mask, cells.shape, params.border_margin):
            continue
        out[box][mask] = label
    relabelled, _, _ = relabel_sequential(out)
    return relabelled.astype(np.uint16)


def _within_margin(box: tuple[slice, ...], mask: np.ndarray, shape, margin: int) -> bool:
    coords = np.nonzero(mask)
    for axis in range(-2, 0):  # YX only: z slabs of a stack are not a field-of-view border
        values = coords[axis] + box[axis].start
        if values.max() < margin or values.min() >= shape[axis] - margin:
            return True
    return False
