"""Segmentation errors injected into perfect masks: cut, merged, missed and spurious cells.

A tracker that only ever saw perfect masks turns every cut cell into a division and every
missed frame into a new track. To train and measure one that does not, any CTC mask set
(ground truth or a result) is given the mistakes a real segmenter makes, at chosen rates and
seeded, in 2D and 3D:

- cut: a cell split in two by a plane through its centre (a random direction);
- merge: a cell and a neighbour within half a cell radius given one label (the gap closed);
- drop: a cell missing from the frame;
- add: a spurious blob (half a typical cell's radius) where there was background.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from inference.io import atomic_output_dir, frame_name, open_masks, write_mask
from training.segmentation.samples import typical_radius


@dataclass(frozen=True)
class ErrorRates:
    """Chance per cell and frame of each error (`add`: blobs per cell present)."""

    cut: float = 0.0
    merge: float = 0.0
    drop: float = 0.0
    add: float = 0.0

    def __post_init__(self) -> None:
        for name in ("cut", "merge", "drop", "add"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"error rate {name}={value!r} must lie in 0..1")


@dataclass
class Injected:
    """What was done to one frame: labels (of the input) cut, merged (pairs), dropped, and
    the labels of the blobs added (in the output)."""

    cut: list[int] = field(default_factory=list)
    merged: list[tuple[int, int]] = field(default_factory=list)
    dropped: list[int] = field(default_factory=list)
    added: list[int] = field(default_factory=list)


def cut_cell(mask: np.ndarray, label: int, new: int, rng: np.random.Generator) -> bool:
    """Split `label` by a plane through its centre: one side keeps `label`, the other gets
    `new`. False (nothing changed) when either side would be empty."""
    coords = np.argwhere(mask == label)
    if len(coords) < 4:
        return False
    direction = rng.normal(size=mask.ndim)
    direction /= np.linalg.norm(direction) or 1.0
    side = (coords - coords.mean(axis=0)) @ direction > 0
    if side.all() or not side.any():
        return False
    mask[tuple(coords[side].T)] = new
    return True


def touching_neighbours(mask: np.ndarray, label: int, reach: int = 2) -> list[int]:
    """Labels within `reach` pixels of `label`."""
    grown = ndi.binary_dilation(mask == label, iterations=reach)
    found = np.unique(mask[grown])
    return [int(v) for v in found if v and v != label]


def merge_cells(mask: np.ndarray, keep: int, other: int, reach: int = 2) -> None:
    """`other` becomes part of `keep`; the background gap between them is closed."""
    union = (mask == keep) | (mask == other)
    closed = ndi.binary_closing(union, iterations=reach)
    mask[(closed & (mask == 0)) | (mask == other)] = keep


def add_blob(mask: np.ndarray, label: int, radius: float, rng: np.random.Generator) -> bool:
    """A ball of `radius` px with `label`, centred on background at least `radius` + 1 px
    from every cell; False when no such place is left."""
    r = max(int(round(radius)), 1)
    free = ~ndi.binary_dilation(mask > 0, iterations=r + 1)
    spots = np.argwhere(free)
    if not len(spots):
        return False
    centre = spots[rng.integers(len(spots))]
    box = tuple(
        slice(max(c - r, 0), min(c + r + 1, size))
        for c, size in zip(centre, mask.shape, strict=True)
    )
    grid = np.ogrid[box]
    ball = sum((g - c) ** 2 for g, c in zip(grid, centre, strict=True)) <= r * r
    region = mask[box]
    region[ball & (region == 0)] = label
    return True


def inject(
    mask: np.ndarray, rates: ErrorRates, rng: np.random.Generator
) -> tuple[np.ndarray, Injected]:
    """One frame's mask with errors drawn at `rates` (a new array; input labels kept for the
    cells left whole, new labels above the input's largest for pieces and blobs)."""
    out = np.array(mask, dtype=np.int64, copy=True)
    done = Injected()
    labels = [int(v) for v in np.unique(out) if v]
    radius = typical_radius([out])  # px (0 without cells, when nothing below uses it)
    # a segmenter merges cells that come within about half a radius of each other (a 2 px
    # reach found almost no pair among SIM+ nuclei)
    reach = max(2, round(radius / 2))
    next_label = max(labels, default=0) + 1
    gone: set[int] = set()
    for label in labels:
        if label in gone:
            continue
        draw = rng.random(3)
        if draw[0] < rates.drop:
            out[out == label] = 0
            done.dropped.append(label)
            gone.add(label)
        elif draw[1] < rates.merge:
            near = [n for n in touching_neighbours(out, label, reach) if n not in gone]
            if near:
                other = near[int(rng.integers(len(near)))]
                merge_cells(out, label, other, reach)
                done.merged.append((label, other))
                gone.update((label, other))
        elif draw[2] < rates.cut and cut_cell(out, label, next_label, rng):
            done.cut.append(label)
            gone.add(label)
            next_label += 1
    for _ in range(int(rng.binomial(len(labels), rates.add)) if labels else 0):
        if add_blob(out, next_label, radius / 2, rng):
            done.added.append(next_label)
            next_label += 1
    return out, done


def inject_sequence(
    masks: str | Path, out: str | Path, rates: ErrorRates, seed: int = 0
) -> list[Injected]:
    """Every frame of a mask folder (GT TRA/SEG or a result) with errors, written as
    `mask###.tif` into `out` (atomically); the same seed gives the same files."""
    source = open_masks(masks)
    n = len(source)
    report = []
    with atomic_output_dir(out) as tmp:
        for t, frame in enumerate(_frames(source)):
            rng = np.random.default_rng((seed, t))
            damaged, done = inject(frame, rates, rng)
            write_mask(tmp / frame_name("mask", t, n), damaged)
            report.append(done)
    return report


def _frames(source) -> Iterator[np.ndarray]:
    for position in range(len(source)):
        yield source.read(position)


#: The issues' mix of errors per unit of rate: cut, missed, merged, spurious.
ERROR_MIX = {"cut": 1.0, "drop": 0.6, "merge": 0.2, "add": 0.2}


def error_rates(rate: float) -> ErrorRates:
    """The issues' mix scaled by `rate` (0.05: 5% cut, 3% missed, 1% merged, 1% spurious)."""
    return ErrorRates(**{kind: share * rate for kind, share in ERROR_MIX.items()})
