"""Edge files: the GNN's probability of every candidate link, kept beside a result.

A CTC result folder holds only masks and `res_track.txt`, so `gnntrack track/run --edges
FILE.csv` writes the link probabilities to a separate CSV, one row per candidate edge, both
ends named as the result names them (frame and track label in `mask###.tif`):
`t_source, label_source, t_target, label_target, probability, linked` (`linked` = 1 where
the edge is part of the written lineage). The report and the GEFF export read it back.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from inference.errors import CTCError
from inference.io.atomic import atomic_file, refuse_to_overwrite

#: Columns of an edge file, in order.
EDGE_COLUMNS = ["t_source", "label_source", "t_target", "label_target", "probability", "linked"]


def write_edges(path: str | Path, table: pd.DataFrame) -> Path:
    """Write an edge table as CSV, atomically (a temporary file renamed into place)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_file(path, lambda tmp: table.to_csv(tmp, index=False, float_format="%.6g"))


def read_edges(path: str | Path) -> pd.DataFrame:
    """Read an edge file written by `write_edges`; a missing column is a CTCError."""
    path = Path(path)
    if not path.is_file():
        raise CTCError("edge file not found", path)
    try:
        table = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise CTCError(f"cannot read edge file ({exc})", path) from exc
    missing = [c for c in EDGE_COLUMNS if c not in table.columns]
    if missing:
        raise CTCError(f"not an edge file: columns {', '.join(missing)} missing", path)
    return table


def check_edges_path(path: str | Path, out_dir: str | Path, overwrite: bool) -> None:
    """CTCError, before any work, if the edge file would land in the result or overwrite."""
    path, out_dir = Path(path).resolve(), Path(out_dir).resolve()
    if path == out_dir or out_dir in path.parents:
        raise CTCError(
            "the edge file must not go inside the result folder (a CTC result holds only "
            "masks and res_track.txt)",
            path,
        )
    refuse_to_overwrite(path, overwrite)
