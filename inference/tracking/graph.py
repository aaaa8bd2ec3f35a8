"""The tracking graph: cells are nodes, candidate links t -> t+1 and t -> t+2 are edges.

A cell is joined to at most `max_candidates` nearest cells of the next frame within `radius`,
and of the frame after within `radius_gap` (to bridge one missed detection). Both radii are
learned from tracked ground truth by training (the largest true displacement plus a margin)
and stored in the model's config with the feature normalisation statistics, so nothing here
is a hand-set pixel value and training and inference see identically scaled inputs. The
frame index is not a feature (the published method's train/test mismatch).

A generalist model (trained on many datasets) opts in to lengths in units of the cell size:
with `cell_diameter` set, each frame's size features are scaled by its cells' median size
over `cell_diameter`, and each frame pair's positions and radii by the pair's, so a model
learned on nuclei of 50 px links nuclei of 25 px the same way. A pair's edges depend on its
two frames only, so overlapping windows agree on them (the stream sums their scores).
Without it (every per-dataset model), nothing is rescaled: features are the pixel values
they always were.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy.spatial import cKDTree

from inference.cells.features import AXES
from inference.config import (
    ConfigValueError,
    choice,
    integer,
    items,
    load_section,
    number,
    setting,
    value_error,
)

#: Node features per dimension count (computed by `node_matrix`).
NODE_FEATURES = {
    n: ["log_area", "major_axis", "minor_axis", "elongation"]
    + [f"extent_{a}" for a in AXES[n]]
    + ["rel_mean_intensity", "rel_std_intensity", "rel_min_intensity", "rel_max_intensity"]
    + ["border_distance"]
    for n in (2, 3)
}
#: Edge features per dimension count (computed by `edge_matrix`).
EDGE_FEATURES = {
    n: [f"shift_{a}" for a in AXES[n]]
    + ["distance", "gap", "rank_out", "rank_in", "log_area_ratio", "embedding_cosine"]
    for n in (2, 3)
}


_NUMBERS = items(number())


@dataclass
class GraphSpec:
    """How graphs are built and scaled: the `graph` section of the tracker's config.json
    (`from_dict` checks it, see `inference.config`)."""

    ndim: int = setting(choice(2, 3))
    radius: float = setting(number(above=0))  # px (spacing-scaled), links t -> t+1
    radius_gap: float = setting(number(above=0))  # links t -> t+2
    max_candidates: int = setting(integer(1), 8)
    spacing: list[float] = setting(items(number(above=0)), factory=list)
    node_mean: list[float] = setting(_NUMBERS, factory=list)
    node_std: list[float] = setting(_NUMBERS, factory=list)
    edge_mean: list[float] = setting(_NUMBERS, factory=list)
    edge_std: list[float] = setting(_NUMBERS, factory=list)
    # > 0: lengths in units of the cells' median diameter, this many px (spacing-scaled) in
    # training; 0: raw px (absent from the config then, as in every per-dataset model).
    cell_diameter: float = setting(number(minimum=0), 0.0)

    def __post_init__(self) -> None:
        if not self.spacing:
            self.spacing = [1.0] * self.ndim
        if len(self.spacing) != self.ndim:
            raise ConfigValueError("spacing", self.spacing, f"{self.ndim} numbers > 0")
        for name, count in (
            ("node", len(NODE_FEATURES[self.ndim])),
            ("edge", len(EDGE_FEATURES[self.ndim])),
        ):
            if not getattr(self, f"{name}_mean"):
                setattr(self, f"{name}_mean", [0.0] * count)
                setattr(self, f"{name}_std", [1.0] * count)
            for key in (f"{name}_mean", f"{name}_std"):
                if len(getattr(self, key)) != count:
                    allowed = f"{count} numbers, one per {name} feature of a {self.ndim}D graph"
                    raise ConfigValueError(key, getattr(self, key), allowed)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if not self.cell_diameter:
            del data["cell_diameter"]  # configs without the opt-in stay as they were
        return {
            **data,
            "node_features": NODE_FEATURES[self.ndim],
            "edge_features": EDGE_FEATURES[self.ndim],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: Path | None = None) -> GraphSpec:
        """The spec of a config's `graph` section; the feature names `to_dict` records
        must be the ones this version computes, anything else is a CTCError naming `source`."""
        data = dict(data) if isinstance(data, dict) else data
        names = {k: data.pop(k) for k in ("node_features", "edge_features") if k in data}
        spec = load_section(cls, data, source, "graph")
        for key, recorded in names.items():
            wanted = (NODE_FEATURES if key == "node_features" else EDGE_FEATURES)[spec.ndim]
            if recorded != wanted:
                raise value_error(f"graph.{key}", recorded, " ".join(wanted), source)
        return spec


@dataclass
class FrameNodes:
    """The cells of one frame: their feature table and appearance vectors (n, d).

    `column` hands out the table's columns as float64 arrays, converted once: a frame is in
    several windows, and pandas column access costs more than the arithmetic done with it.
    """

    frame: int
    table: pd.DataFrame
    embedding: np.ndarray
    _columns: dict[str, np.ndarray] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __len__(self) -> int:
        return len(self.table)

    def column(self, name: str) -> np.ndarray:
        """Column `name` of `table` as a float64 array (cached; do not modify it)."""
        values = self._columns.get(name)
        if values is None:
            values = self._columns[name] = self.table[name].to_numpy(np.float64)
        return values


def _column(cells: pd.DataFrame | FrameNodes, name: str) -> np.ndarray:
    if isinstance(cells, FrameNodes):
        return cells.column(name)
    return cells[name].to_numpy(np.float64)


def positions(cells: pd.DataFrame | FrameNodes, spec: GraphSpec) -> np.ndarray:
    """Centroids (n, ndim), scaled by the voxel spacing (`cells`: a table or its frame)."""
    axes = AXES[spec.ndim]
    centroid = np.stack([_column(cells, f"centroid_{a}") for a in axes], axis=1)
    return centroid * np.asarray(spec.spacing)


def cell_size(frames: Sequence[pd.DataFrame | FrameNodes], spec: GraphSpec) -> float:
    """The median diameter of the cells of `frames` (px, spacing-scaled; 0 without cells):
    the (ndim)th root of the volume, a unit for lengths that differs from the equivalent
    diameter by a constant factor only."""
    areas = [_column(f, "area") for f in frames if len(f)]
    if not areas:
        return 0.0
    volume = float(np.median(np.concatenate(areas))) * float(np.prod(spec.spacing))
    return volume ** (1.0 / spec.ndim)


def sized(spec: GraphSpec, frames: Sequence[pd.DataFrame | FrameNodes]) -> tuple[GraphSpec, float]:
    """The spec to build a graph over `frames` with, and the factor lengths are divided by.

    Without the opt-in (`cell_diameter` 0) that is `spec` itself and 1. With it, the factor
    is the frames' `cell_size` over `cell_diameter`, and the returned spec's spacing is
    divided by it, so positions, shifts and distances come out in the training's units.
    """
    size = cell_size(frames, spec) if spec.cell_diameter else 0.0
    if size <= 0:
        return spec, 1.0
    factor = size / spec.cell_diameter
    return replace(spec, spacing=[s / factor for s in spec.spacing]), factor


def node_matrix(
    cells: pd.DataFrame | FrameNodes, spec: GraphSpec, factor: float = 1.0
) -> np.ndarray:
    """Raw node features (n, F) in `NODE_FEATURES` order; intensities relative to the frame.

    `cells` is a frame's feature table, or its `FrameNodes` (whose columns are cached);
    `factor` (from `sized`, 1 without the opt-in) divides the lengths.
    """
    axes = AXES[spec.ndim]
    if len(cells) == 0:
        return np.zeros((0, len(NODE_FEATURES[spec.ndim])))
    level = float(np.median(_column(cells, "mean_intensity")))
    level = level if level > 0 else 1.0
    border = _column(cells, "border_distance")
    columns = [
        np.log(_column(cells, "area")),
        _column(cells, "major_axis"),
        _column(cells, "minor_axis"),
        _column(cells, "elongation"),
        *(_column(cells, f"bbox_max_{a}") - _column(cells, f"bbox_min_{a}") for a in axes),
        *(_column(cells, f"{s}_intensity") / level for s in ("mean", "std", "min", "max")),
    ]
    if factor != 1.0:  # lengths in cell-size units: the area by factor^ndim (elongation is
        columns[0] = columns[0] - spec.ndim * np.log(factor)  # a ratio and stays)
        for k in (1, 2, *range(4, 4 + len(axes))):
            columns[k] = columns[k] / factor
        border = border / factor
    columns.append(np.minimum(border, 2 * spec.radius) / spec.radius)
    return np.stack(columns, axis=1)


def candidate_pairs(
    a: np.ndarray, b: np.ndarray, radius: float, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The up to `k` nearest points of `b` within `radius` of each point of `a`: (i, j, dist)."""
    if len(a) == 0 or len(b) == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty, np.zeros(0)
    dist, j = cKDTree(b).query(a, k=min(k, len(b)), distance_upper_bound=radius)
    dist, j = dist.reshape(len(a), -1), j.reshape(len(a), -1)
    keep = np.isfinite(dist)
    i = np.broadcast_to(np.arange(len(a))[:, None], dist.shape)[keep]
    return i.astype(np.int64), j[keep].astype(np.int64), dist[keep]


def _ranks(owner: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """Rank of each edge by distance among the edges of the same owner node (0 = nearest)."""
    order = np.lexsort((dist, owner))
    ranks = np.empty(len(owner), np.float64)
    sorted_owner = owner[order]
    first = np.r_[0, np.flatnonzero(sorted_owner[1:] != sorted_owner[:-1]) + 1]
    starts = np.repeat(first, np.diff(np.r_[first, len(owner)]))
    ranks[order] = np.arange(len(owner)) - starts
    return ranks


def frame_pair_edges(
    src: FrameNodes, dst: FrameNodes, gap: int, spec: GraphSpec
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidate edges src -> dst (`gap` frames apart): rows i, rows j, raw features (E, F)."""
    pa, pb = positions(src, spec), positions(dst, spec)
    radius = spec.radius if gap == 1 else spec.radius_gap
    i, j, dist = candidate_pairs(pa, pb, radius, spec.max_candidates)
    shift = (pb[j] - pa[i]) / spec.radius
    area_a, area_b = src.column("area"), dst.column("area")
    if src.embedding.shape[1] and len(i):
        cosine = np.sum(src.embedding[i] * dst.embedding[j], axis=1)
    else:
        cosine = np.zeros(len(i))
    features = np.column_stack(
        [
            shift,
            dist / spec.radius,
            np.full(len(i), gap - 1.0),
            _ranks(i, dist) if len(i) else np.zeros(0),
            _ranks(j, dist) if len(i) else np.zeros(0),
            np.log(area_b[j] / area_a[i]) if len(i) else np.zeros(0),
            cosine,
        ]
    )
    return i, j, features.reshape(len(i), len(EDGE_FEATURES[spec.ndim]))


@dataclass
class WindowGraph:
    """A graph over consecutive frames, ready for the GNN, with each edge's frame and rows."""

    x: torch.Tensor  # (N, F) normalised node features
    emb: torch.Tensor  # (N, d) appearance vectors
    edge_index: torch.Tensor  # (2, E) node indices into x
    edge_attr: torch.Tensor  # (E, Fe) normalised edge features
    edges: np.ndarray  # (E, 4): source frame, source row, gap, target row


def _scale(values: np.ndarray, mean: list[float], std: list[float]) -> torch.Tensor:
    scaled = (values - np.asarray(mean)) / np.maximum(np.asarray(std), 1e-6)
    return torch.from_numpy(scaled.astype(np.float32))


def build_window(frames: list[FrameNodes], spec: GraphSpec, max_gap: int = 2) -> WindowGraph:
    """The graph over `frames` (consecutive): edges from every frame to the next `max_gap`."""
    offsets = np.cumsum([0] + [len(f) for f in frames])
    node_raw = (
        np.concatenate([node_matrix(f, spec, sized(spec, [f])[1]) for f in frames])
        if frames
        else None
    )
    dim = frames[0].embedding.shape[1] if frames else 0
    emb = np.concatenate([f.embedding for f in frames]) if frames else np.zeros((0, dim))
    src_all, dst_all, feats, meta = [], [], [], []
    for a, frame in enumerate(frames):
        for gap in range(1, max_gap + 1):
            if a + gap >= len(frames):
                break
            pair, _ = sized(spec, [frame, frames[a + gap]])
            i, j, f = frame_pair_edges(frame, frames[a + gap], gap, pair)
            src_all.append(i + offsets[a])
            dst_all.append(j + offsets[a + gap])
            feats.append(f)
            meta.append(np.column_stack([np.full(len(i), frame.frame), i, np.full(len(i), gap), j]))
    n_edge_features = len(EDGE_FEATURES[spec.ndim])
    edge_raw = np.concatenate(feats) if feats else np.zeros((0, n_edge_features))
    index = np.stack([np.concatenate(src_all), np.concatenate(dst_all)]) if src_all else None
    return WindowGraph(
        x=_scale(
            node_raw if node_raw is not None else np.zeros((0, len(spec.node_mean))),
            spec.node_mean,
            spec.node_std,
        ),
        emb=torch.from_numpy(np.ascontiguousarray(emb, np.float32)),
        edge_index=torch.from_numpy(index if index is not None else np.zeros((2, 0), np.int64)),
        edge_attr=_scale(edge_raw, spec.edge_mean, spec.edge_std),
        edges=np.concatenate(meta).astype(np.int64) if meta else np.zeros((0, 4), np.int64),
    )
