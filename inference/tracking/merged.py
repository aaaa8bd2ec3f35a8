"""A frame's alternative version as the stream holds it: its cells with each candidate
group's new cells in place of its old ones (`inference.tracking.candidates`), how the
solver's nodes relate to its rows, and how a chosen candidate is written (a union's label
on both pieces, a split's halves painted)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from inference.cells.crops import intensity_range
from inference.cells.features import CompactLabels
from inference.models.tracker import Tracker
from inference.tracking.candidates import Alternatives, Splits, alternative_frame
from inference.tracking.graph import FrameNodes
from inference.tracking.lineage import relabel
from inference.tracking.solve import Groups, SolverParams


class MergedFrame:
    """A frame's alternative version: its cells with each candidate group's new cells in
    place of its old ones, how its rows relate to the frame's (`Alternatives`), and, where
    it splits objects, its label image (the halves' pixels)."""

    def __init__(self, nodes: FrameNodes, groups: Alternatives, index: np.ndarray | None) -> None:
        self.nodes = nodes
        self.groups = groups
        self.index = index


def merged_nodes(nodes: FrameNodes, merged: MergedFrame | None) -> FrameNodes:
    return nodes if merged is None else merged.nodes


def n_nodes(nodes: FrameNodes, merged: MergedFrame | None) -> int:
    """The solver's nodes of a frame: its cells, then the alternatives' new cells."""
    return len(nodes) + (merged.groups.n_new if merged is not None else 0)


def node_of(nodes: FrameNodes, merged: MergedFrame | None) -> np.ndarray:
    """The solver node of each row of the frame's alternative version."""
    return np.arange(len(nodes)) if merged is None else merged.groups.merged_row


def candidate_groups(merged: MergedFrame | None, solver: SolverParams) -> Groups | None:
    """The frame's candidate groups for `solve_pair`, each with its bonus."""
    if merged is None:
        return None
    groups = merged.groups
    bonus = np.where(
        np.arange(len(groups)) < groups.n_unions, solver.union_bonus, solver.split_bonus
    )
    return Groups(groups.old, groups.new, bonus.astype(np.float64))


def labels_of_cells(
    n_cells: int, merged: MergedFrame | None, chosen: np.ndarray, labels: np.ndarray
) -> np.ndarray:
    """The track label of each cell of a frame: its own, or that of the new cell chosen in
    its place (a union's; a split object's first half's)."""
    if merged is None:
        return labels
    out = np.zeros(n_cells, np.int64)
    cell = chosen < n_cells
    out[chosen[cell]] = labels[cell]
    groups = merged.groups
    for node, label in zip(chosen[~cell].tolist(), labels[~cell].tolist(), strict=True):
        g, slot = groups.group_of(node)
        if slot == 0:
            old = groups.old[g]
            out[old[old >= 0]] = label
    return out


def result_mask(
    index: np.ndarray,
    merged: MergedFrame | None,
    chosen: np.ndarray,
    labels: np.ndarray,
    cell_labels: np.ndarray,
) -> np.ndarray:
    """The frame's result mask: each cell's label, a chosen split object's pixels as its
    two halves."""
    mask = relabel(index, cell_labels)
    if merged is None or merged.index is None:
        return mask
    groups = merged.groups
    n_cells = len(cell_labels)
    for node, label in zip(chosen.tolist(), labels.tolist(), strict=True):
        if node < n_cells:
            continue
        if groups.group_of(node)[0] < groups.n_unions:
            continue
        value = groups.labels[groups.merged_row == node][0]
        mask[merged.index == value] = label
    return mask


def merged_version(
    tracker: Tracker,
    image: np.ndarray,
    nodes: FrameNodes,
    compact: CompactLabels,
    pairs: np.ndarray,
    splits: Splits,
    frame: int,
) -> MergedFrame:
    """The frame with each candidate group's new cells in place of its old ones: only the
    new cells are measured and embedded (a cell's features and crop are its own), the
    other cells' rows are copied."""
    merged_index, groups = alternative_frame(compact.index, len(nodes), pairs, splits)
    new = groups.labels[groups.merged_row >= len(nodes)]
    new_only = np.where(np.isin(merged_index, new), merged_index, 0)
    # in label order, as the new rows are; crops scaled by the whole frame's cell pixels
    measured, _ = tracker.nodes(image, new_only, frame, intensity_range(image, compact))
    cell = groups.merged_row < len(nodes)
    # the alternative frame's rows are in label order: cells and new cells interleaved;
    # take each from its part
    take = np.where(cell, np.cumsum(cell) - 1, cell.sum() + np.cumsum(~cell) - 1)
    table = pd.concat([nodes.table.iloc[groups.merged_row[cell]], measured.table])
    table = table.iloc[take].reset_index(drop=True)
    embedding = np.concatenate([nodes.embedding[groups.merged_row[cell]], measured.embedding])
    return MergedFrame(
        FrameNodes(frame, table, embedding[take]), groups, merged_index if len(splits) else None
    )
