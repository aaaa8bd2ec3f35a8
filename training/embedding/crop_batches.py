"""Cell crops with track ids, and the published batch sampling: adjacent samples per track.

A batch holds `tracks` tracks with `per_track` temporally adjacent crops each (4 x 8 = 32 in
the published setting), so the positives of a crop are the same cell a few frames away and
its negatives the other cells of the batch. Tracks are split into training and validation
tracks, so validation measures cells the network has never seen.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch

from inference.cells.crops import cell_crops
from training.tracked import TrackedFrame


@dataclass
class CropSet:
    """Crops (n, *size) float32 with their track id and frame."""

    crops: np.ndarray
    track: np.ndarray
    frame: np.ndarray

    def subset(self, keep: np.ndarray) -> CropSet:
        return CropSet(self.crops[keep], self.track[keep], self.frame[keep])

    def __len__(self) -> int:
        return len(self.track)


def collect_crops(
    frames: Iterable[TrackedFrame], extent: tuple[int, ...], size: tuple[int, ...]
) -> CropSet:
    """The crops of every tracked cell (cells without a track id are left out)."""
    crops, tracks, times = [], [], []
    for f in frames:
        keep = f.track_ids > 0
        if not keep.any():
            continue
        c = cell_crops(f.image, f.compact, f.table, extent, size)
        crops.append(c[keep])
        tracks.append(f.track_ids[keep])
        times.append(np.full(int(keep.sum()), f.frame))
    if not crops:
        return CropSet(np.zeros((0, *size), np.float32), np.zeros(0, np.int64), np.zeros(0, int))
    return CropSet(np.concatenate(crops), np.concatenate(tracks), np.concatenate(times))


def split_tracks(
    data: CropSet, fraction: float, rng: np.random.Generator
) -> tuple[CropSet, CropSet]:
    """Training and validation crops, split by track (about `fraction` of tracks validate)."""
    ids = np.unique(data.track)
    val_ids = rng.choice(ids, size=max(1, round(fraction * len(ids))), replace=False)
    is_val = np.isin(data.track, val_ids)
    return data.subset(~is_val), data.subset(is_val)


class TrackBatches:
    """Random batches of `tracks` x `per_track` adjacent crops, with flips as augmentation."""

    def __init__(self, data: CropSet, tracks: int, per_track: int, seed: int) -> None:
        self.data, self.tracks, self.per_track = data, tracks, per_track
        self.rng = np.random.default_rng(seed)
        order = np.lexsort((data.frame, data.track))
        self.order = order
        ids, starts, counts = np.unique(data.track[order], return_index=True, return_counts=True)
        usable = counts >= 2
        self.starts, self.counts = starts[usable], counts[usable]
        if len(self.starts) < 2:
            raise ValueError("metric learning needs at least two tracks seen in two frames")

    def __call__(self) -> tuple[torch.Tensor, torch.Tensor]:
        pick = self.rng.choice(
            len(self.starts), size=min(self.tracks, len(self.starts)), replace=False
        )
        rows: list[int] = []
        for k in pick:
            take = min(self.per_track, int(self.counts[k]))
            first = int(self.rng.integers(0, self.counts[k] - take + 1))
            rows += list(self.order[self.starts[k] + first : self.starts[k] + first + take])
        crops = self.data.crops[rows].copy()
        ndim = crops.ndim - 1
        for axis in range(1, ndim + 1):
            flip = self.rng.random(len(rows)) < 0.5
            crops[flip] = np.flip(crops[flip], axis=axis)
        crops *= self.rng.uniform(0.8, 1.2, size=(len(rows),) + (1,) * ndim).astype(np.float32)
        labels = torch.from_numpy(self.data.track[rows].astype(np.int64))
        return torch.from_numpy(np.ascontiguousarray(crops))[:, None], labels


@torch.no_grad()
def embed_all(model: torch.nn.Module, crops: np.ndarray, batch: int = 256) -> torch.Tensor:
    """Embeddings of `crops` (n, *size), in batches."""
    device = next(model.parameters()).device
    parts = [
        model(torch.from_numpy(crops[i : i + batch])[:, None].to(device)).cpu()
        for i in range(0, len(crops), batch)
    ]
    return torch.cat(parts) if parts else torch.zeros(0)


@torch.no_grad()
def next_frame_accuracy(model: torch.nn.Module, queries: CropSet, pool: CropSet) -> float:
    """How often a query cell's most similar cell of the next frame (in `pool`) is itself.

    Each query crop of frame t whose track is also in frame t+1 is compared with every crop
    of `pool` in frame t+1 (all cells, not only validation ones).
    """
    model.eval()
    q, p = embed_all(model, queries.crops), embed_all(model, pool.crops)
    hits = total = 0
    for t in np.unique(queries.frame):
        qi = np.flatnonzero(queries.frame == t)
        pi = np.flatnonzero(pool.frame == t + 1)
        if len(pi) == 0:
            continue
        for i in qi:
            same = pool.track[pi] == queries.track[i]
            if not same.any():
                continue
            best = int(torch.argmax(p[pi] @ q[i]))
            hits += int(same[best])
            total += 1
    return hits / total if total else 0.0
