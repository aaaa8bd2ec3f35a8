"""Statistics of a CTC sequence that say whether simulated data looks and moves like real data.

Measured the same way on real CTC data and on the simulator's output (benchmarks and tests use
them): cell size, density, speed, intensity contrast and noise, division rate, touching and
leaving cells. Frames are streamed: a long sequence is never held in memory whole.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from inference.io import FrameSequence, MaskSequence, Track, open_images, open_masks, read_tracks


@dataclass(frozen=True)
class SequenceStats:
    """Summary of one sequence; lengths in xy pixels, rates per frame."""

    name: str
    ndim: int
    frames: int
    diameter: float  # median equivalent diameter of a cell (xy px; 3D volume with z spacing)
    cells_per_frame: float
    density: float  # cells per 100x100 px of field (xy area)
    speed_median: float  # centroid displacement per frame, px
    speed_p90: float
    speed_rel_median: float  # displacement / median radius
    speed_rel_p90: float
    fg_bg_ratio: float  # mean cell intensity / mean background intensity
    snr: float  # (mean fg - mean bg) / std bg, the CTC's signal-to-noise ratio
    cv: float  # std / mean of the cell pixels (texture plus noise)
    heterogeneity: float  # std of per-cell mean intensities / (mean fg - mean bg), as the CTC
    division_rate: float  # divisions per cell per frame
    touching: float  # fraction of cells that touch another cell, per frame
    leaving: float  # fraction of tracks that end at the border before the last frame

    def as_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


def label_centroids(
    mask: np.ndarray, spacing: tuple[float, ...] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels present in `mask`, their sizes (pixels) and centroids (scaled by `spacing`).

    Vectorised with bincount, so cheap for hundreds of labels on a large frame.
    """
    flat = mask.ravel().astype(np.int64, copy=False)
    counts = np.bincount(flat)
    labels = np.flatnonzero(counts)
    labels = labels[labels > 0]
    if labels.size == 0:
        return labels, np.zeros(0), np.zeros((0, mask.ndim))
    spacing = spacing or (1.0,) * mask.ndim
    centroids = np.empty((labels.size, mask.ndim))
    grids = np.indices(mask.shape, sparse=True)
    for axis in range(mask.ndim):
        coord = np.broadcast_to(grids[axis], mask.shape).ravel()
        sums = np.bincount(flat, weights=coord, minlength=counts.size)
        centroids[:, axis] = sums[labels] / counts[labels] * spacing[axis]
    return labels, counts[labels].astype(float), centroids


def equivalent_diameter(size: np.ndarray, ndim: int) -> np.ndarray:
    """Diameter of the disk (2D) or ball (3D) with the same area or volume."""
    size = np.asarray(size, dtype=float)
    if ndim == 2:
        return 2.0 * np.sqrt(size / np.pi)
    return 2.0 * np.cbrt(3.0 * size / (4.0 * np.pi))


def touching_labels(mask: np.ndarray) -> np.ndarray:
    """Labels that share a face with a different non-zero label (cells in contact)."""
    touching: list[np.ndarray] = []
    for axis in range(mask.ndim):
        a = np.moveaxis(mask, axis, 0)
        left, right = a[:-1], a[1:]
        contact = (left != right) & (left > 0) & (right > 0)
        touching += [left[contact], right[contact]]
    return np.unique(np.concatenate(touching)) if touching else np.zeros(0, mask.dtype)


def division_rate(tracks: list[Track]) -> float:
    """Divisions (distinct parents) per cell per frame of observed track life."""
    cell_frames = sum(t.end - t.begin + 1 for t in tracks)
    parents = {t.parent for t in tracks if t.parent}
    return len(parents) / cell_frames if cell_frames else 0.0


def intensity_statistics(
    image: np.ndarray, cells: np.ndarray, exclude: np.ndarray | None = None, margin: int = 4
) -> dict[str, float | np.ndarray]:
    """Foreground / background statistics of one frame.

    `cells` is an instance mask of the cells to measure; `exclude` (optional) marks further
    cells that must not count as background. Background pixels lie `margin` px away from any
    cell, so the blurred rim of a cell does not lower the measured contrast.
    """
    image = image.astype(np.float64, copy=False)
    occupied = cells > 0
    if exclude is not None:
        occupied |= exclude > 0
    structure = ndi.generate_binary_structure(cells.ndim, 1)
    near = ndi.binary_dilation(occupied, structure, iterations=margin) if margin else occupied
    bg = image[~near]
    fg = image[cells > 0]
    labels, sizes, _ = label_centroids(cells)
    sums = np.bincount(cells.ravel().astype(np.int64), weights=image.ravel())
    cell_means = sums[labels] / sizes if labels.size else np.zeros(0)
    return {
        "fg_mean": float(fg.mean()) if fg.size else np.nan,
        "fg_std": float(fg.std()) if fg.size else np.nan,
        "bg_mean": float(bg.mean()) if bg.size else np.nan,
        "bg_std": float(bg.std()) if bg.size else np.nan,
        "cell_means": cell_means,
    }


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def measure_sequence(
    dataset: str | Path,
    sequence: str = "01",
    *,
    name: str | None = None,
    spacing: tuple[float, ...] | None = None,
    max_intensity_frames: int = 12,
) -> SequenceStats:
    """Measure a CTC sequence `dataset/<sequence>` with its `<sequence>_GT` (TRA, SEG if any).

    Without a `_GT` folder a `<sequence>_RES` result (masks + res_track.txt) is measured
    instead, and without raw frames the intensity statistics are NaN. `spacing` is the voxel
    size in xy pixels (z first) for 3D data.
    """
    dataset = Path(dataset)
    raw = dataset / sequence
    gt, res = dataset / f"{sequence}_GT", dataset / f"{sequence}_RES"
    if gt.is_dir():
        tra, track_file, seg = gt / "TRA", gt / "TRA" / "man_track.txt", gt / "SEG"
    else:
        tra, track_file, seg = res, res / "res_track.txt", None
    return measure(
        raw if raw.is_dir() else None,
        tra,
        track_file,
        seg if seg is not None and seg.is_dir() else None,
        name=name or dataset.name,
        spacing=spacing,
        max_intensity_frames=max_intensity_frames,
    )


def measure(
    images_dir: Path | None,
    tra_dir: Path,
    track_file: Path,
    seg_dir: Path | None = None,
    *,
    name: str = "",
    spacing: tuple[float, ...] | None = None,
    max_intensity_frames: int = 12,
) -> SequenceStats:
    """Measure one sequence from its folders (see `measure_sequence`).

    Motion, density and lineage come from the tracking masks; size and intensity from SEG
    frames where there are some (TRA may hold only markers), else from the tracking masks.
    """
    images = open_images(images_dir) if images_dir is not None else None
    tra = open_masks(tra_dir)
    tracks = read_tracks(track_file)
    seg = open_masks(seg_dir, "man_seg") if seg_dir is not None else None
    spacing = spacing or (1.0,) * tra.ndim
    counts, steps, touching, last_seen = _motion(tra, spacing)
    diameters, light = _size_and_light(images, tra, seg, spacing, max_intensity_frames)

    nan = float("nan")
    diameter = float(np.median(diameters)) if diameters else nan
    radius = diameter / 2.0
    fg, fg_std, bg, bg_std, spread = (
        float(np.mean(v)) if v else nan for v in (light[k] for k in _LIGHT)
    )
    frames = len(tra)
    margin = max(diameter, 10.0)
    extent = (np.array(tra.shape) * np.array(spacing))[-2:]
    parents = {t.parent for t in tracks}
    leaving = 0
    for track in tracks:  # ended before the last frame, near the border, without dividing
        if track.end >= frames - 1 or track.label in parents or track.label not in last_seen:
            continue
        centre = last_seen[track.label][-2:]
        leaving += bool(np.any(centre < margin) or np.any(centre > extent - margin))
    return SequenceStats(
        name=name,
        ndim=tra.ndim,
        frames=frames,
        diameter=diameter,
        cells_per_frame=float(np.mean(counts)),
        density=float(np.mean(counts)) / float(np.prod(tra.shape[-2:])) * 1e4,
        speed_median=_percentile(steps, 50),
        speed_p90=_percentile(steps, 90),
        speed_rel_median=_percentile(steps, 50) / radius,
        speed_rel_p90=_percentile(steps, 90) / radius,
        fg_bg_ratio=fg / bg if bg > 0 else nan,
        snr=(fg - bg) / bg_std if bg_std > 0 else nan,
        cv=fg_std / fg if fg > 0 else nan,
        heterogeneity=spread / (fg - bg) if fg != bg else nan,
        division_rate=division_rate(tracks),
        touching=float(np.mean(touching)) if touching else 0.0,
        leaving=leaving / len(tracks) if tracks else 0.0,
    )


_LIGHT = ("fg_mean", "fg_std", "bg_mean", "bg_std", "spread")


def _motion(
    tra: MaskSequence, spacing: tuple[float, ...]
) -> tuple[list[int], list[float], list[float], dict[int, np.ndarray]]:
    """Per frame: cell counts, centroid steps of labels seen in the frame before, touching
    fractions; and the last centroid of every label."""
    counts, steps, touching = [], [], []
    last_seen: dict[int, np.ndarray] = {}
    previous: dict[int, np.ndarray] = {}
    for mask in tra:
        labels, _, centroids = label_centroids(mask, spacing)
        counts.append(labels.size)
        current = dict(zip(labels.tolist(), centroids, strict=True))
        steps += [
            float(np.linalg.norm(c - previous[k])) for k, c in current.items() if k in previous
        ]
        if labels.size:
            touching.append(touching_labels(mask).size / labels.size)
        last_seen.update(current)
        previous = current
    return counts, steps, touching, last_seen


def _size_and_light(
    images: FrameSequence | None,
    tra: MaskSequence,
    seg: MaskSequence | None,
    spacing: tuple[float, ...],
    max_frames: int,
) -> tuple[list[float], dict[str, list[float]]]:
    """Cell diameters and intensity statistics on up to `max_frames` frames spread over the
    sequence: SEG frames (full instance masks) where there are some, else TRA frames."""
    if seg is not None:
        positions = [(f.index, i) for i, f in enumerate(seg.frames)]
    else:
        positions = [(i, None) for i in range(len(tra))]
    pick = np.unique(np.linspace(0, len(positions) - 1, max_frames).round().astype(int))
    diameters: list[float] = []
    light: dict[str, list[float]] = {k: [] for k in _LIGHT}
    for index, seg_pos in (positions[p] for p in pick):
        marker = tra.read(index)
        cells = seg.read(seg_pos) if seg is not None and seg_pos is not None else marker
        _, sizes, _ = label_centroids(cells)
        if sizes.size == 0:
            continue
        diameters += list(equivalent_diameter(sizes * float(np.prod(spacing)), tra.ndim))
        if images is None:
            continue
        stats = intensity_statistics(images.read(index), cells, exclude=marker)
        for key in ("fg_mean", "fg_std", "bg_mean", "bg_std"):
            light[key].append(float(stats[key]))
        light["spread"].append(float(np.std(stats["cell_means"])))
    return diameters, light
