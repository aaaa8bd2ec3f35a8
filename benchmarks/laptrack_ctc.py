"""LapTrack (the established LAP tracker) on the same masks as ours, written as a CTC result.

LapTrack links centroids: frame-to-frame, then gap closing and splitting (divisions) as a
second assignment over track segments, with squared-distance cutoffs. The cutoffs come from
the data, as ours do: the candidate radii our tracker learned from the training frames.
Its tracks are turned into CTC tracks: a track with a missed frame continues as a new label
whose parent is the part before the gap; daughters get the mother's last label as parent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from laptrack import LapTrack

from inference.cells.features import AXES, compact_labels, frame_features
from inference.io import FrameSequence, MaskSequence, Track, write_result


def _table(images: FrameSequence, masks: MaskSequence) -> pd.DataFrame:
    tables = [frame_features(masks.read(t), images.read(t), t) for t in range(len(masks))]
    return pd.concat(tables, ignore_index=True)


def _ctc_tracks(linked: pd.DataFrame, splits: pd.DataFrame) -> tuple[dict, list[Track]]:
    """(frame, mask label) -> CTC label, and the CTC tracks."""
    lookup: dict[tuple[int, int], int] = {}
    tracks: list[Track] = []
    last_label: dict[int, int] = {}
    first_label: dict[int, int] = {}
    for track_id, rows in linked.sort_values("frame").groupby("track_id", sort=True):
        frames = rows["frame"].to_numpy()
        labels = rows["label"].to_numpy()
        cut = np.flatnonzero(np.diff(frames) > 1) + 1
        parent = 0
        for part_frames, part_labels in zip(
            np.split(frames, cut), np.split(labels, cut), strict=True
        ):
            label = len(tracks) + 1
            tracks.append(Track(label, int(part_frames[0]), int(part_frames[-1]), parent))
            for f, m in zip(part_frames, part_labels, strict=True):
                lookup[(int(f), int(m))] = label
            first_label.setdefault(int(track_id), label)
            parent = label
        last_label[int(track_id)] = parent
    for _, row in splits.iterrows():
        child = first_label.get(int(row["child_track_id"]))
        mother = last_label.get(int(row["parent_track_id"]))
        if child is None or mother is None:
            continue
        old = tracks[child - 1]
        if mother != child and tracks[mother - 1].end < old.begin:
            tracks[child - 1] = Track(old.label, old.begin, old.end, mother)
    return lookup, tracks


def laptrack_sequence(
    images: FrameSequence,
    masks: MaskSequence,
    radius: float,
    radius_gap: float,
    out_dir: str | Path,
    spacing: list[float] | None = None,
) -> list[Track]:
    """Track `masks` with LapTrack (cutoffs radius^2, gap closing over one missed frame)."""
    table = _table(images, masks)
    axes = AXES[images.ndim]
    coords = [f"centroid_{a}" for a in axes]
    scaled = table.copy()
    if spacing:
        for column, s in zip(coords, spacing, strict=True):
            scaled[column] = scaled[column] * s
    tracker = LapTrack(
        cutoff=radius**2,
        splitting_cutoff=radius**2,
        gap_closing_cutoff=radius_gap**2,
        gap_closing_max_frame_count=2,
    )
    linked, splits, _ = tracker.predict_dataframe(
        scaled, coords, frame_col="frame", only_coordinate_cols=False
    )
    linked = linked.reset_index(drop=True)
    lookup, tracks = _ctc_tracks(linked, splits)

    def relabelled():
        for t in range(len(masks)):
            compact = compact_labels(masks.read(t))
            lut = np.zeros(compact.count + 1, np.uint16)
            lut[1:] = [lookup[(t, int(m))] for m in compact.labels]
            yield lut[compact.index]

    write_result(out_dir, relabelled(), tracks, n_frames=len(masks), overwrite=True)
    return tracks
