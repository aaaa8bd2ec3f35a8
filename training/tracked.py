"""Tracked ground truth for training the embedding and the GNN: cells with their track ids.

The cells are the instance masks of `<seq>_GT/TRA` where those are full masks (Fluo-N2DH-SIM+,
the simulator), otherwise those of a mask folder given by the user (our segmentation, or
silver masks): each such cell takes the id of the TRA marker it overlaps most (0: none, a
false detection), which is how the published marker-based variant gets full-cell features.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from inference.cells.features import CompactLabels, compact_labels, frame_features
from inference.errors import CTCError
from inference.io import Track, list_frames, open_images, open_masks, read_tiff, read_tracks


@dataclass
class TrackedFrame:
    """One frame: image, cells (compact labels, feature table) and each cell's track id."""

    frame: int
    image: np.ndarray
    compact: CompactLabels
    table: pd.DataFrame
    track_ids: np.ndarray


@dataclass(frozen=True)
class Lineage:
    """Ground-truth tracks: parent and first frame of every track id."""

    parent: dict[int, int]
    begin: dict[int, int]

    @classmethod
    def read(cls, path: Path) -> Lineage:
        """The lineage of a `man_track.txt` file."""
        return cls.read_tracks(read_tracks(path))

    @classmethod
    def read_tracks(cls, tracks: list[Track]) -> Lineage:
        return cls({t.label: t.parent for t in tracks}, {t.label: t.begin for t in tracks})

    def is_link(self, a: np.ndarray, b: np.ndarray, frame_b: int, gap: int) -> np.ndarray:
        """Whether cells of track ids `a` continue into cells `b` of `frame_b`, `gap` frames on.

        True for the same track, and for a track starting within the gap whose parent is `a`
        (a daughter, or the CTC's way of writing a track interrupted by missed frames).
        """
        same = (a == b) & (a > 0)
        parent = np.array([self.parent.get(int(v), 0) for v in b], np.int64)
        begin = np.array([self.begin.get(int(v), -1) for v in b], np.int64)
        child = (parent == a) & (a > 0) & (begin > frame_b - gap) & (begin <= frame_b)
        return same | child


def _markers_only(tra: Path, seg: Path) -> bool:
    """True when TRA objects are much smaller than SEG objects (markers, not full masks)."""
    if not seg.is_dir():
        return False
    seg_frames = list_frames(seg, "man_seg", contiguous=False)
    if not seg_frames:
        return False
    first = seg_frames[0]
    seg_mask = read_tiff(first.path)
    tra_mask = read_tiff(tra / first.path.name.replace("man_seg", "man_track"))
    sizes = [np.bincount(m.ravel())[1:] for m in (seg_mask, tra_mask)]
    sizes = [s[s > 0] for s in sizes]
    if not all(len(s) for s in sizes):
        return False
    return float(np.median(sizes[1])) < 0.5 * float(np.median(sizes[0]))


def _match_markers(mask: np.ndarray, markers: np.ndarray, compact: CompactLabels) -> np.ndarray:
    """Per cell of `compact`: the TRA id it overlaps most (0: no marker)."""
    both = (compact.index > 0) & (markers > 0)
    if not both.any():
        return np.zeros(compact.count, np.int64)
    pairs = pd.DataFrame({"cell": compact.index[both], "marker": markers[both]})
    counts = pairs.value_counts().reset_index(name="n").sort_values("n", ascending=False)
    best = counts.drop_duplicates("cell")
    ids = np.zeros(compact.count + 1, np.int64)
    ids[best["cell"].to_numpy()] = best["marker"].to_numpy()
    return ids[1:]


def tracked_frames(
    dataset: str | Path,
    seq: str = "01",
    frames: range | None = None,
    masks_dir: str | Path | None = None,
) -> tuple[Iterator[TrackedFrame], Lineage, int]:
    """Frames of `dataset/seq` (those in `frames`) with track ids, the lineage, and ndim.

    Frames are read lazily. Without `masks_dir` the TRA masks must be full cell masks.
    """
    dataset = Path(dataset)
    gt = dataset / f"{seq}_GT"
    tra_dir = gt / "TRA"
    if not (tra_dir / "man_track.txt").is_file():
        raise CTCError(f"training needs {seq}_GT/TRA/man_track.txt", dataset)
    images = open_images(dataset / seq)
    tra = open_masks(tra_dir, "man_track")
    masks = open_masks(masks_dir) if masks_dir is not None else None
    for other in (tra, masks):
        if other is not None and (len(other) != len(images) or other.shape != images.shape):
            raise CTCError(
                f"{len(other)} frames of {other.shape}, the images have {len(images)} of "
                f"{images.shape}",
                other.folder,
            )
    if masks is None and _markers_only(tra_dir, gt / "SEG"):
        raise CTCError(
            "TRA holds markers, not full masks: pass a mask folder (e.g. from gnntrack "
            "segment) whose cells are matched to the markers",
            tra_dir,
        )
    lineage = Lineage.read(tra_dir / "man_track.txt")
    wanted = [t for t in range(len(images)) if frames is None or t in frames]

    def generate() -> Iterator[TrackedFrame]:
        for t in wanted:
            image, markers = images.read(t), tra.read(t)
            mask = masks.read(t) if masks is not None else markers
            compact = compact_labels(mask)
            table = frame_features(mask, image, t, compact)
            ids = compact.labels if masks is None else _match_markers(mask, markers, compact)
            yield TrackedFrame(t, image, compact, table, np.asarray(ids, np.int64))

    return generate(), lineage, images.ndim
