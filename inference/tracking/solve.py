"""From edge scores to links: an optimal assignment per frame pair, divisions and gaps included.

For frames t and t+1 every cell of t+1 gets at most one predecessor: a cell of t (continuing
it, or as one of two daughters) or a cell of t-1 that found no successor in t (a missed
detection bridged). Each cell of t gets at most two successors. Among all such choices the
solver takes the one with the largest total score, where a link scores its logit
log(p / (1 - p)), a second successor (a division) scores its logit minus `division_cost` and
a bridged gap its logit minus `gap_cost`; not linking scores 0, so a link needs p > 0.5 and
wins a conflict only by its margin over the alternatives.

This is a maximum-weight bipartite matching (each cell of t appears twice as a row: first
and second successor), solved exactly with `scipy.optimize.linear_sum_assignment` on each
connected group of candidates. Unlike the published greedy rule (each cell keeps its
nearest "on" edge), two cells can never claim the same successor, a cell never gets three
daughters, and a cell missed in one frame keeps its lineage.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from inference.config import ConfigValueError, load_section, number, section, setting
from inference.tracking.repair import RepairParams


@dataclass(frozen=True)
class SolverParams:
    """Costs (in logit units) that shape the lineage; tuned on validation data by training.
    The `solver` section of the tracker's config.json (checked by `from_dict`)."""

    # a second successor must cost more than a first
    division_cost: float = setting(number(above=0), 2.0)
    gap_cost: float = setting(number(0), 2.0)
    # segmentation errors repaired on the result masks (inference/tracking/repair.py)
    repair: RepairParams = section(RepairParams)

    def __post_init__(self) -> None:
        if not self.division_cost > 0:
            raise ConfigValueError("division_cost", self.division_cost, "a number > 0")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: Path | None = None) -> SolverParams:
        """Checked costs: an unknown key or a bad value is a CTCError naming `source`."""
        return load_section(cls, data, source, "solver")


@dataclass(frozen=True)
class Links:
    """Candidate links between two frames: source rows, target rows and logits."""

    src: np.ndarray
    dst: np.ndarray
    logit: np.ndarray

    @classmethod
    def empty(cls) -> Links:
        return cls(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))


@dataclass(frozen=True)
class PairSolution:
    """For each cell of t+1: its predecessor's row (-1: none) and whether it is in t-1."""

    source: np.ndarray
    from_gap: np.ndarray

    def children(self, n_src: int) -> np.ndarray:
        """Number of successors in t+1 of each of the `n_src` cells of t."""
        direct = self.source[(self.source >= 0) & ~self.from_gap]
        return np.bincount(direct, minlength=n_src)


def _local_index(component: np.ndarray) -> np.ndarray:
    """Rank of each node among the nodes of its component, in node order (0, 1, ...)."""
    order = np.argsort(component, kind="stable")
    counts = np.bincount(component)
    first = np.cumsum(counts) - counts
    local = np.empty(len(component), np.int64)
    local[order] = np.arange(len(component)) - np.repeat(first, counts)
    return local


def _match(rows: np.ndarray, cols: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Indices of the chosen edges of a maximum-weight matching (weights all > 0).

    Each (row, column) pair occurs at most once. Every connected group of candidates is
    solved on its own (groups of one edge are taken as they are); the rows and columns of a
    group keep their order, so each group's cost matrix, and so its solution, does not
    depend on what else is in the frame.
    """
    if len(rows) == 0:
        return np.zeros(0, np.int64)
    r_ids, r_inv = np.unique(rows, return_inverse=True)
    c_ids, c_inv = np.unique(cols, return_inverse=True)
    n_r = len(r_ids)
    graph = coo_matrix((np.ones(len(rows)), (r_inv, c_inv + n_r)), shape=(n_r + len(c_ids),) * 2)
    _, component = connected_components(graph, directed=False)
    row_comp, col_comp = component[:n_r], component[n_r:]
    local_r, local_c = _local_index(row_comp)[r_inv], _local_index(col_comp)[c_inv]
    n_rows = np.bincount(row_comp, minlength=component.max() + 1)
    n_cols = np.bincount(col_comp, minlength=component.max() + 1)
    edge_comp = row_comp[r_inv]
    order = np.argsort(edge_comp, kind="stable")
    bounds = np.flatnonzero(np.r_[True, np.diff(edge_comp[order]) != 0, True])
    chosen: list[int] = []
    for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        members = order[a:b]
        if b - a == 1:
            chosen.append(int(members[0]))
            continue
        group = edge_comp[members[0]]
        ri, ci = local_r[members], local_c[members]
        cost = np.zeros((n_rows[group], n_cols[group]))
        best = np.full(cost.shape, -1, np.int64)
        cost[ri, ci] = -weight[members]  # (row, column) pairs are unique
        best[ri, ci] = members
        picked = best[linear_sum_assignment(cost)]
        chosen += picked[picked >= 0].tolist()
    return np.asarray(sorted(chosen), np.int64)


def solve_pair(
    n_src: int,
    n_dst: int,
    links: Links,
    gap_links: Links,
    open_rows: np.ndarray,
    params: SolverParams,
) -> PairSolution:
    """Predecessors of the `n_dst` cells of t+1.

    `links` go from the `n_src` cells of t; `gap_links` from cells of t-1, of which only
    `open_rows` (those without a successor in t) may be used.
    """
    allowed = np.isin(gap_links.src, open_rows)
    gap = Links(gap_links.src[allowed], gap_links.dst[allowed], gap_links.logit[allowed])
    base = 2 * n_src
    rows = np.concatenate([links.src, links.src + n_src, base + gap.src])
    cols = np.concatenate([links.dst, links.dst, gap.dst])
    weight = np.concatenate(
        [links.logit, links.logit - params.division_cost, gap.logit - params.gap_cost]
    )
    positive = weight > 0
    chosen = np.flatnonzero(positive)[_match(rows[positive], cols[positive], weight[positive])]
    source = np.full(n_dst, -1, np.int64)
    from_gap = np.zeros(n_dst, bool)
    picked_rows, picked_cols = rows[chosen], cols[chosen]
    source[picked_cols] = np.where(
        picked_rows >= base, picked_rows - base, np.mod(picked_rows, max(n_src, 1))
    )
    from_gap[picked_cols] = picked_rows >= base
    return PairSolution(source, from_gap)
