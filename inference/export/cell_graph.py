"""A CTC result as a cell graph: one node per cell and frame, an edge per link in time.

Nodes come from the masks (one row per label and frame, with its centroid), edges from the
track file: a label's consecutive frames, and each track's first cell to its parent's last.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from inference.cells.positions import position_columns, sequence_positions
from inference.errors import CTCError
from inference.io import Track, open_masks, read_tracks
from inference.io.result import RES_TRACK_FILE
from inference.progress import progress


@dataclass
class CellGraph:
    """`nodes`: t, label, (z,) y, x, area per cell; `edges`: (source row, target row) pairs."""

    nodes: pd.DataFrame
    edges: np.ndarray
    tracks: list[Track]

    @property
    def axes(self) -> list[str]:
        return position_columns(self.nodes)


def result_graph(res_dir: str | Path) -> CellGraph:
    """The cell graph of a result folder (its masks are read once, frame by frame)."""
    res_dir = Path(res_dir)
    tracks = read_tracks(res_dir / RES_TRACK_FILE)
    masks = open_masks(res_dir, "mask")
    nodes = sequence_positions(progress(masks, len(masks), "read masks"))
    row = {(int(t), int(k)): i for i, (t, k) in enumerate(zip(nodes.t, nodes.label, strict=True))}
    by_label = {t.label: t for t in tracks}
    edges = []
    for track in tracks:
        for t in range(track.begin, track.end + 1):
            if (t, track.label) not in row:
                raise CTCError(
                    f"label {track.label} is missing from frame {t} (the result does not "
                    "validate: run gnntrack validate)",
                    res_dir,
                )
            if t > track.begin:
                edges.append((row[(t - 1, track.label)], row[(t, track.label)]))
        if track.parent:
            parent = by_label.get(track.parent)
            if parent is None or (parent.end, parent.label) not in row:
                raise CTCError(f"track {track.label} has an unknown parent", res_dir)
            edges.append((row[(parent.end, parent.label)], row[(track.begin, track.label)]))
    return CellGraph(nodes, np.asarray(edges, np.int64).reshape(-1, 2), tracks)


def chain_ids(tracks: list[Track]) -> tuple[dict[int, int], dict[int, int]]:
    """Per track label: its tracklet (tracks chained through single children, i.e. the same
    cell across missed frames, named by the first label) and its lineage (root label)."""
    labels = {t.label for t in tracks}
    children: dict[int, int] = {}
    for t in tracks:
        children[t.parent] = children.get(t.parent, 0) + 1
    tracklet: dict[int, int] = {}
    lineage: dict[int, int] = {}
    for track in sorted(tracks, key=lambda t: (t.begin, t.label)):
        parent = track.parent if track.parent in labels else 0
        if parent and children[parent] == 1:
            tracklet[track.label] = tracklet.get(parent, parent)
        else:
            tracklet[track.label] = track.label
        lineage[track.label] = lineage.get(parent, parent) if parent else track.label
    return tracklet, lineage
