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

With candidate cells (`inference.tracking.candidates`), some cells of t+1 are also offered as
one (a union of two touching pieces): the solver then chooses, with the links, either the
union or its two pieces, whichever lets the links score more (a union chosen scores
`union_bonus` besides its link). A group of candidates holding a union is no longer a
bipartite matching; it is solved exactly as a small integer program
(`scipy.optimize.milp`), the others as before, so without unions nothing changes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import LinearConstraint, linear_sum_assignment, milp
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from inference.config import ConfigValueError, flag, load_section, number, section, setting
from inference.tracking.repair import RepairParams


@dataclass(frozen=True)
class SolverParams:
    """Costs (in logit units) that shape the lineage; tuned on validation data by training.
    The `solver` section of the tracker's config.json (checked by `from_dict`)."""

    # a second successor must cost more than a first
    division_cost: float = setting(number(above=0), 2.0)
    gap_cost: float = setting(number(0), 2.0)
    # offer two touching pieces as one cell too (`inference.tracking.candidates`): pairs
    # whose shared border is at least `union_contact` x sqrt(smaller area)
    unions: bool = setting(flag(), False)
    union_contact: float = setting(number(above=0), 1.0)
    # what a chosen union scores besides its link (logit units; > 0 favours whole cells;
    # 4 chosen on injected errors and our own segmentation, docs/tracking.md)
    union_bonus: float = setting(number(), 4.0)
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
    """For each cell of t+1: its predecessor's row (-1: none) and whether it is in t-1;
    with candidate unions, `present` says which targets were chosen (None: all)."""

    source: np.ndarray
    from_gap: np.ndarray
    present: np.ndarray | None = None

    def chosen(self) -> PairSolution:
        """The solution for the chosen targets only, in their order."""
        if self.present is None:
            return self
        return PairSolution(self.source[self.present], self.from_gap[self.present])

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


def _components(
    rows: np.ndarray, cols: np.ndarray, n_cols: int, unions: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Connected groups of candidates: each edge's group and each column's (a union's
    column is tied to its pieces' columns, as they exclude each other)."""
    r_ids, r_inv = np.unique(rows, return_inverse=True)
    n_r = len(r_ids)
    first = n_cols - len(unions)
    union_cols = np.arange(first, n_cols)
    src = np.concatenate([r_inv, union_cols + n_r, union_cols + n_r])
    dst = np.concatenate([cols + n_r, unions[:, 0] + n_r, unions[:, 1] + n_r])
    size = n_r + n_cols
    graph = coo_matrix((np.ones(len(src)), (src, dst)), shape=(size, size))
    _, component = connected_components(graph, directed=False)
    return component[r_inv], component[n_r:]


def _choose(
    rows: np.ndarray,
    cols: np.ndarray,
    weight: np.ndarray,
    n_cols: int,
    unions: np.ndarray,
    bonus: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Chosen edges and chosen unions: the best total of edge weights (all > 0) and
    `bonus` per chosen union, each row and column used once, and a union's column used only
    if it is chosen, its pieces' only if it is not. Groups without a union are matchings
    (`_match`); the others small integer programs, solved exactly."""
    k = len(unions)
    chosen_union = np.zeros(k, bool)
    if k == 0:
        return _match(rows, cols, weight), chosen_union
    edge_group, col_group = _components(rows, cols, n_cols, unions)
    first = n_cols - k
    with_union = np.zeros(max(col_group.max(), edge_group.max(initial=0)) + 1, bool)
    with_union[col_group[first:]] = True
    plain = ~with_union[edge_group]
    chosen = [np.flatnonzero(plain)[_match(rows[plain], cols[plain], weight[plain])]]
    # prefer the segmenter's pieces when the choice is even (a deterministic tie-break)
    union_score = bonus - 1e-6
    for group in np.flatnonzero(with_union):
        edges = np.flatnonzero(edge_group == group)
        members = np.flatnonzero(col_group[first:] == group)
        if not len(edges) and union_score <= 0:
            continue
        picked, picked_unions = _program(
            rows[edges],
            cols[edges],
            weight[edges],
            unions[members],
            first + members,
            union_score,
        )
        chosen.append(edges[picked])
        chosen_union[members[picked_unions]] = True
    return np.sort(np.concatenate(chosen)), chosen_union


def _program(
    rows: np.ndarray,
    cols: np.ndarray,
    weight: np.ndarray,
    parts: np.ndarray,
    union_cols: np.ndarray,
    union_score: float,
) -> tuple[np.ndarray, np.ndarray]:
    """One group of `_choose` as an integer program: variables are the edges, then one per
    union (chosen or not)."""
    n_e, n_u = len(rows), len(union_cols)
    r_ids, r_inv = np.unique(rows, return_inverse=True)
    c_ids, c_inv = np.unique(
        np.concatenate([cols, parts.reshape(-1), union_cols]), return_inverse=True
    )
    e_col = c_inv[:n_e]
    part_col = c_inv[n_e : n_e + 2 * n_u].reshape(-1, 2)
    own_col = c_inv[n_e + 2 * n_u :]
    n_r, n_c = len(r_ids), len(c_ids)
    # rows: one successor each; columns: one predecessor, none for a piece of a chosen
    # union, and a union's only if it is chosen
    a = np.zeros((n_r + n_c, n_e + n_u))
    a[r_inv, np.arange(n_e)] = 1
    a[n_r + e_col, np.arange(n_e)] = 1
    for u in range(n_u):
        a[n_r + part_col[u], n_e + u] = 1
        a[n_r + own_col[u], n_e + u] = -1
    is_union_col = np.zeros(n_c, bool)
    is_union_col[own_col] = True
    upper = np.ones(n_r + n_c)
    upper[n_r:][is_union_col] = 0
    cost = -np.concatenate([weight, np.full(n_u, union_score)])
    result = milp(
        cost,
        integrality=np.ones(n_e + n_u),
        bounds=(0, 1),
        constraints=LinearConstraint(a, -np.inf, upper),
    )
    if not result.success:  # pragma: no cover - the all-zero choice is always feasible
        raise RuntimeError(f"the link solver failed: {result.message}")
    x = np.round(result.x).astype(bool)
    return np.flatnonzero(x[:n_e]), np.flatnonzero(x[n_e:])


def solve_pair(
    n_src: int,
    n_dst: int,
    links: Links,
    gap_links: Links,
    open_rows: np.ndarray,
    params: SolverParams,
    unions: np.ndarray | None = None,
) -> PairSolution:
    """Predecessors of the `n_dst` cells of t+1.

    `links` go from the `n_src` cells of t; `gap_links` from cells of t-1, of which only
    `open_rows` (those without a successor in t) may be used. With `unions` (k, 2), the
    last k of the `n_dst` targets are candidate unions of the two cells in each row: the
    solution's `present` then says which targets were chosen.
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
    if unions is None:
        unions = np.zeros((0, 2), np.int64)
    picked, chosen_unions = _choose(
        rows[positive], cols[positive], weight[positive], n_dst, unions, params.union_bonus
    )
    chosen = np.flatnonzero(positive)[picked]
    source = np.full(n_dst, -1, np.int64)
    from_gap = np.zeros(n_dst, bool)
    picked_rows, picked_cols = rows[chosen], cols[chosen]
    source[picked_cols] = np.where(
        picked_rows >= base, picked_rows - base, np.mod(picked_rows, max(n_src, 1))
    )
    from_gap[picked_cols] = picked_rows >= base
    if not len(unions):
        return PairSolution(source, from_gap)
    present = np.ones(n_dst, bool)
    first = n_dst - len(unions)
    present[first:] = chosen_unions
    present[unions[chosen_unions].reshape(-1)] = False
    return PairSolution(source, from_gap, present)
