"""A napari tracks table: `track_id, t, (z,) y, x` per cell and frame, plus `parent_track_id`.

napari's Tracks layer takes the first columns as its data and the parents as its graph:

    df = pandas.read_csv("tracks.csv")
    parents = df.groupby("track_id").parent_track_id.first()
    graph = {k: [p] for k, p in parents.items() if p > 0}
    viewer.add_tracks(df.drop(columns="parent_track_id"), graph=graph)
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from inference.export.cell_graph import result_graph
from inference.io.atomic import atomic_file, refuse_to_overwrite


def napari_tracks(res_dir: str | Path) -> pd.DataFrame:
    """The table of a result folder, sorted by track and frame."""
    graph = result_graph(res_dir)
    parent = {t.label: t.parent for t in graph.tracks}
    nodes = graph.nodes
    table = pd.DataFrame(
        {
            "track_id": nodes["label"].astype("int64"),
            "t": nodes["t"].astype("int64"),
            **{axis: nodes[axis].round(2) for axis in graph.axes},
            "parent_track_id": nodes["label"].map(parent).fillna(0).astype("int64"),
        }
    )
    return table.sort_values(["track_id", "t"], ignore_index=True)


def export_napari(res_dir: str | Path, out: str | Path, *, overwrite: bool = False) -> pd.DataFrame:
    """Write `napari_tracks` of `res_dir` as CSV to `out` (atomically); returns the table."""
    out = Path(out)
    refuse_to_overwrite(out, overwrite)
    table = napari_tracks(res_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_file(out, lambda tmp: table.to_csv(tmp, index=False))
    return table
