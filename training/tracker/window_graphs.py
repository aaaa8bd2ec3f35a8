"""Training graphs for the GNN: windows of tracked frames with a true/false label per edge.

The graph radii and the feature normalisation are learned here from the training frames
only: the radius is the largest true displacement between linked cells plus a margin (so the
candidate edges hold every true link of the training data), at least a cell length; the
statistics are the mean and standard deviation of every node and edge feature. Both are
stored with the model. With the cell-size unit (`GraphSpec.cell_diameter`, a generalist's
opt-in), radii and statistics are learned in that unit, each frame and frame pair scaled by
its cells' size as `build_window` scales them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch

from inference.models.embedding import Embedder
from inference.tracking.graph import (
    FrameNodes,
    GraphSpec,
    WindowGraph,
    build_window,
    cell_size,
    frame_pair_edges,
    node_matrix,
    positions,
    sized,
)
from training.tracked import Lineage, TrackedFrame


@dataclass
class TrackedNodes:
    """The cells of one frame as graph nodes, with their ground-truth track ids."""

    nodes: FrameNodes
    ids: np.ndarray


def embed_frames(frames: Iterable[TrackedFrame], embedder: Embedder | None) -> list[TrackedNodes]:
    """Graph nodes (features and appearance vectors) of tracked frames."""
    out = []
    for f in frames:
        if embedder is not None:
            emb = embedder.embed(f.image, f.compact, f.table)
        else:
            emb = np.zeros((len(f.table), 0), np.float32)
        out.append(TrackedNodes(FrameNodes(f.frame, f.table, emb), f.track_ids))
    return out


def true_links(a: TrackedNodes, b: TrackedNodes, lineage: Lineage) -> tuple[np.ndarray, np.ndarray]:
    """Rows (i in a, j in b) of every true link from frame a to the later frame b."""
    gap = b.nodes.frame - a.nodes.frame
    if len(a.ids) == 0 or len(b.ids) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    i, j = np.meshgrid(np.arange(len(a.ids)), np.arange(len(b.ids)), indexing="ij")
    i, j = i.ravel(), j.ravel()
    keep = lineage.is_link(a.ids[i], b.ids[j], b.nodes.frame, gap)
    return i[keep], j[keep]


#: A training sequence: its consecutive frames and their lineage.
Sequence = tuple[list[TrackedNodes], Lineage]


def _pairs(sequences: list[Sequence], gap: int):
    for frames, lineage in sequences:
        for a, b in zip(frames[:-gap], frames[gap:], strict=True):
            yield a, b, lineage


def learn_radii(sequences: list[Sequence], spec: GraphSpec) -> tuple[float, float]:
    """Candidate radii for gaps of 1 and 2 frames: largest true displacement x 1.2 + 2.

    At least the median cell length, so that neighbours are candidates (negatives to learn
    from) even where cells hardly move.
    """
    radii = []
    for gap in (1, 2):
        largest = 0.0
        for a, b, lineage in _pairs(sequences, gap):
            i, j = true_links(a, b, lineage)
            if len(i):
                pair, _ = sized(spec, [a.nodes, b.nodes])
                d = positions(b.nodes.table, pair)[j] - positions(a.nodes.table, pair)[i]
                largest = max(largest, float(np.linalg.norm(d, axis=1).max()))
        radii.append(largest)
    tables = [
        f.nodes.table["major_axis"].to_numpy() / sized(spec, [f.nodes])[1]
        for frames, _ in sequences
        for f in frames
    ]
    sizes = np.concatenate(tables) if tables else np.zeros(0)
    size = float(np.median(sizes)) if len(sizes) else 10.0
    radius = max(1.2 * radii[0] + 2.0, size)
    return radius, max(1.2 * radii[1] + 2.0, radius)


def fit_statistics(sequences: list[Sequence], spec: GraphSpec) -> GraphSpec:
    """`spec` with node and edge feature means and standard deviations of `sequences`."""
    nodes = np.concatenate(
        [
            node_matrix(f.nodes.table, spec, sized(spec, [f.nodes])[1])
            for frames, _ in sequences
            for f in frames
        ]
    )
    edges = [
        frame_pair_edges(a.nodes, b.nodes, gap, sized(spec, [a.nodes, b.nodes])[0])[2]
        for gap in (1, 2)
        for a, b, _ in _pairs(sequences, gap)
    ]
    edge_matrix = np.concatenate(edges) if edges else np.zeros((0, len(spec.edge_mean)))
    for name, values in (("node", nodes), ("edge", edge_matrix)):
        if len(values):
            setattr(spec, f"{name}_mean", values.mean(axis=0).tolist())
            setattr(spec, f"{name}_std", np.maximum(values.std(axis=0), 1e-3).tolist())
    return spec


def reference_size(sequences: list[Sequence], spec: GraphSpec) -> float:
    """The cell-size unit of a model trained on `sequences`: the median of their cell sizes
    (`inference.tracking.graph.cell_size`), so lengths stay near the pixel values."""
    sizes = [cell_size([f.nodes for f in frames], spec) for frames, _ in sequences]
    sizes = [s for s in sizes if s > 0]
    return float(np.median(sizes)) if sizes else 1.0


@dataclass
class LabelledGraph:
    """A window graph with a 0/1 label per edge, whether the edge is mother -> daughter, and
    whether its label is known (False where an end is a detection no marker claims)."""

    graph: WindowGraph
    labels: torch.Tensor
    daughter: torch.Tensor
    known: torch.Tensor

    def to(self, device: torch.device) -> LabelledGraph:
        """The same graph with its tensors on `device`."""
        g = self.graph
        moved = WindowGraph(
            g.x.to(device),
            g.emb.to(device),
            g.edge_index.to(device),
            g.edge_attr.to(device),
            g.edges,
        )
        return LabelledGraph(
            moved, self.labels.to(device), self.daughter.to(device), self.known.to(device)
        )


def labelled_window(frames: list[TrackedNodes], lineage: Lineage, spec: GraphSpec) -> LabelledGraph:
    """The graph of consecutive `frames` with its edge labels.

    With masks matched to markers (`--masks`), a segmented object no marker claims (id 0) is
    debris, a cell the annotators skipped, or half of a split cell: whether it continues is
    unknown, so its edges are left out of the loss rather than taught as "never linked",
    which made the tracker leave such objects as one-frame tracks.
    """
    graph = build_window([f.nodes for f in frames], spec)
    first = frames[0].nodes.frame
    labels = np.zeros(len(graph.edges), np.float32)
    daughter = np.zeros(len(graph.edges), bool)
    known = np.ones(len(graph.edges), bool)
    keys = graph.edges[:, 0] * 4 + graph.edges[:, 2]
    for key in np.unique(keys):
        sel = np.flatnonzero(keys == key)
        frame, gap = divmod(int(key), 4)
        a, b = frames[frame - first], frames[frame - first + gap]
        ids_a, ids_b = a.ids[graph.edges[sel, 1]], b.ids[graph.edges[sel, 3]]
        linked = lineage.is_link(ids_a, ids_b, b.nodes.frame, gap)
        labels[sel] = linked
        daughter[sel] = linked & (ids_a != ids_b)
        known[sel] = (ids_a > 0) & (ids_b > 0)
    return LabelledGraph(
        graph, torch.from_numpy(labels), torch.from_numpy(daughter), torch.from_numpy(known)
    )


def window_starts(n: int, window: int, stride: int) -> list[tuple[int, int]]:
    """(start, stop) of the windows over `n` frames: every `stride`, the last one shortened."""
    spans = []
    start = 0
    while start + window <= n:
        spans.append((start, start + window))
        start += stride
    if (not spans or spans[-1][1] < n) and n - start >= 2:
        spans.append((start, n))
    return spans
