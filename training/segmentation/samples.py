"""Training samples from a CTC dataset: normalised frames with context, labels, loss mask.

Gold masks (`<seq>_GT/SEG`) are preferred, silver ones (`<seq>_ST/SEG`) fill the other
frames. Real gold masks often annotate only some cells of a frame (Fluo-N2DH-GOWT1: about
two of twenty); the cells that only the tracking markers (`_GT/TRA`) know are then masked
out of the loss around their marker instead of being taught as background.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from inference.errors import CTCError
from inference.io import FrameSequence, list_frames, open_images, open_masks, read_tiff
from seg_code.normalize import percentile_normalize
from training.segmentation.looks import validation_looks


@dataclass
class SegSample:
    """One annotated frame: `image` (context + 1, *spatial), `labels`, and `valid` loss mask."""

    index: int
    image: np.ndarray
    labels: np.ndarray
    valid: np.ndarray
    source: str
    markers: np.ndarray | None = None  # the frame's tracking markers: every cell, one each


def _annotations(dataset: Path, seq: str) -> dict[int, tuple[Path, str]]:
    """Frame index -> (mask file, 'gold' | 'silver'); gold wins."""
    found: dict[int, tuple[Path, str]] = {}
    for kind, folder in (
        ("silver", dataset / f"{seq}_ST" / "SEG"),
        ("gold", dataset / f"{seq}_GT" / "SEG"),
    ):
        if folder.is_dir():
            for frame in list_frames(folder, "man_seg", contiguous=False):
                found[frame.index] = (frame.path, kind)
    if not found:
        raise CTCError(f"no {seq}_GT/SEG or {seq}_ST/SEG masks to train on", dataset)
    return found


def _unannotated_mask(labels: np.ndarray, markers: np.ndarray, radius: float) -> np.ndarray:
    """Pixels near tracking markers that no segmentation label covers (unknown, not background)."""
    if markers is None or radius <= 0:
        return np.zeros(labels.shape, bool)
    missing = np.zeros(labels.shape, bool)
    for label, box in enumerate(ndi.find_objects(markers), start=1):
        if box is None:
            continue
        marker = markers[box] == label
        if (labels[box][marker] > 0).mean() < 0.5:
            missing[box] |= marker
    if not missing.any():
        return missing
    return ndi.distance_transform_edt(~missing) <= radius


def typical_radius(masks: list[np.ndarray]) -> float:
    """Radius (px) of a disc (2D) or ball (3D) of the median cell size; 0 without cells."""
    areas = [np.bincount(m.ravel())[1:] for m in masks]
    areas = np.concatenate([a[a > 0] for a in areas]) if areas else np.array([])
    if areas.size == 0:
        return 0.0
    ndim = masks[0].ndim
    volume = float(np.median(areas))
    return (volume / np.pi) ** 0.5 if ndim == 2 else (3 * volume / (4 * np.pi)) ** (1 / 3)


def load_samples(
    dataset: str | Path,
    seq: str,
    *,
    frames: range | None = None,
    context_frames: int = 1,
    normalization: dict[str, float] | None = None,
) -> list[SegSample]:
    """All annotated frames of `dataset/seq` whose index lies in `frames` (None: all)."""
    dataset = Path(dataset)
    images: FrameSequence = open_images(dataset / seq)
    normalization = normalization or {}
    annotated = {
        t: v for t, v in _annotations(dataset, seq).items() if frames is None or t in frames
    }
    if not annotated:
        raise CTCError(f"no annotated frames of {seq} in frames {frames}", dataset)
    tra_dir = dataset / f"{seq}_GT" / "TRA"
    tra = open_masks(tra_dir, "man_track") if tra_dir.is_dir() else None
    labels = {t: read_tiff(path).astype(np.int32) for t, (path, _) in annotated.items()}
    for t, mask in labels.items():
        if mask.shape != images.shape:
            raise CTCError(f"mask of frame {t} has shape {mask.shape}, images {images.shape}")
    radius = 1.5 * typical_radius(list(labels.values()))
    cache: dict[int, np.ndarray] = {}

    def normalised(t: int) -> np.ndarray:
        t = min(max(t, 0), len(images) - 1)
        if t not in cache:
            cache[t] = percentile_normalize(images.read(t), **normalization)
        return cache[t]

    samples = []
    for t in sorted(annotated):
        context = np.stack([normalised(t - k) for k in range(context_frames, -1, -1)])
        markers = tra.read(t) if tra is not None and t < len(tra) else None
        valid = ~_unannotated_mask(labels[t], markers, radius)
        samples.append(SegSample(t, context, labels[t], valid, annotated[t][1], markers))
    return samples


def with_look_shifts(samples: list[SegSample], seed: int = 0) -> list[SegSample]:
    """`samples` and, for each, its fixed look shifts (`validation_looks`): a validation set
    that also asks how the model does on another sequence's look."""
    out = list(samples)
    for i, s in enumerate(samples):
        rng = np.random.default_rng((seed, i))
        for name, image in validation_looks(s.image, s.labels, rng).items():
            out.append(
                SegSample(s.index, image, s.labels, s.valid, f"{s.source}, {name}", s.markers)
            )
    return out
