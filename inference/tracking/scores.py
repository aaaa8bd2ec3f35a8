"""The GNN's link probabilities of a tracking run, recorded for `--edges FILE.csv`.

`EdgeRecorder` listens to the run through `track_sequence`'s hooks: it keeps the edge scores
of every window the GNN scores and the label the result gave each graph row, and after the
run the edges are written with those labels. `probability` is the sigmoid of the mean logit
over the windows that scored the edge, the number the solver used. The file format is
`inference.io.edge_file`.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from inference.io import Track
from inference.io.edge_file import EDGE_COLUMNS
from inference.tracking.stream import EdgeScores


class EdgeRecorder:
    """What a tracking run scored, kept in memory through `track_sequence`'s two hooks:
    every window's edges and logits (`scored`), and the result label of each graph row of
    every frame (`observe`)."""

    def __init__(self) -> None:
        self.scores = EdgeScores()
        self.row_labels: dict[int, np.ndarray] = {}

    def scored(self, edges: np.ndarray, logits: np.ndarray) -> None:
        self.scores.add(edges, logits)

    def observe(self, table: pd.DataFrame, labels: np.ndarray) -> None:
        if len(table):  # a frame without cells has no edges to translate
            self.row_labels[int(table["frame"].iloc[0])] = np.asarray(labels, np.int64)


def edge_table(
    scores: EdgeScores, row_labels: dict[int, np.ndarray], tracks: Iterable[Track]
) -> pd.DataFrame:
    """One row per scored candidate edge, rows of the GNN graph translated to track labels.

    `row_labels[t]` holds the result label of each cell (graph row) of frame t, in row order.
    Where two graph rows are one result cell (a chosen union's pieces), their edges to the
    same cell are one row, the most probable.
    """
    by_label = {track.label: track for track in tracks}
    parts = []
    for frame, gap in sorted(scores.edges):
        target = frame + gap
        if frame not in row_labels or target not in row_labels:
            continue
        links = scores.links(frame, gap)  # the mean logit of each edge, as the solver saw it
        logit = links.logit
        source_labels = row_labels[frame][links.src]
        target_labels = row_labels[target][links.dst]
        # a gap the repairs filled: one label on both sides, no measured cell between
        between = set(row_labels.get(frame + 1, np.zeros(0, np.int64)).tolist())
        linked = [
            _is_link(int(a), int(b), frame, target, by_label)
            or (gap == 2 and a == b and int(a) not in between)
            for a, b in zip(source_labels, target_labels, strict=True)
        ]
        parts.append(
            pd.DataFrame(
                {
                    "t_source": frame,
                    "label_source": source_labels,
                    "t_target": target,
                    "label_target": target_labels,
                    "probability": 1.0 / (1.0 + np.exp(-logit)),
                    "linked": np.asarray(linked, np.int64),
                }
            )
        )
    if not parts:
        return pd.DataFrame({c: [] for c in EDGE_COLUMNS})
    table = pd.concat(parts, ignore_index=True)[EDGE_COLUMNS]
    return _one_row_per_cell_pair(table)


def _one_row_per_cell_pair(table: pd.DataFrame) -> pd.DataFrame:
    """Edges between the same two result cells as one row, the most probable: the two pieces
    of a union the solver chose (`inference.tracking.candidates`) are graph rows of their
    own under one label. Rows of cells the result dropped (label 0) stay as they are."""
    pair = ["t_source", "label_source", "t_target", "label_target"]
    cells = (table["label_source"] > 0) & (table["label_target"] > 0)
    named = table[cells]
    if not named.duplicated(pair).any():
        return table
    best = named.sort_values("probability", ascending=False, kind="stable")
    best = best.drop_duplicates(pair).sort_index()
    return table.loc[sorted(best.index.tolist() + table.index[~cells].tolist())].reset_index(
        drop=True
    )


def _is_link(a: int, b: int, t_a: int, t_b: int, tracks: dict[int, Track]) -> bool:
    """Whether the lineage joins cell `a` of frame t_a to cell `b` of frame t_b."""
    if a == b:
        return t_b == t_a + 1
    child = tracks.get(b)
    parent = tracks.get(a)
    return (
        child is not None
        and parent is not None
        and child.parent == a
        and child.begin == t_b
        and parent.end == t_a
    )
