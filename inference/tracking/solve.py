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
    # 2 chosen on injected errors, GT masks and our own segmentation, docs/tracking.md)
    union_bonus: float = setting(number(), 2.0)
    # offer an object that looks like two fused cells (a neck) split in two too
    # (`inference.tracking.candidates.split_candidates`; the neck test is `union_contact`)
    splits: bool = setting(flag(), False)
    # what a chosen split scores besides its halves' links
    split_bonus: float = setting(number(), 0.0)
    # segmentation errors repaired on the result masks (inference/tracking/repair/)
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


@dataclass(frozen=True)
class Groups:
    """Alternative cells of the targets, for `solve_pair`: group g would replace the targets
    `old[g]` by the targets `new[g]` (-1 pads a group of one) and scores `bonus[g]` if
    chosen. A union of two pieces is old (p, q), new (u, -1); a split, old (b, -1), new
    (h1, h2). New targets exist only if their group is chosen, old ones only if not."""

    old: np.ndarray  # (k, 2) int64
    new: np.ndarray  # (k, 2) int64
    bonus: np.ndarray  # (k,)

    def __len__(self) -> int:
        return len(self.old)


def _components(
    rows: np.ndarray, cols: np.ndarray, n_cols: int, groups: Groups
) -> tuple[np.ndarray, np.ndarray]:
    """Connected groups of candidates: each edge's group and each column's (a group's
    columns, old and new, are tied together, as they exclude each other)."""
    r_ids, r_inv = np.unique(rows, return_inverse=True)
    n_r = len(r_ids)
    members = np.concatenate([groups.old, groups.new], axis=1)  # (k, 4)
    first = np.repeat(members[:, :1], members.shape[1], axis=1)
    tie = members >= 0
    src = np.concatenate([r_inv, first[tie] + n_r])
    dst = np.concatenate([cols + n_r, members[tie] + n_r])
    size = n_r + n_cols
    graph = coo_matrix((np.ones(len(src)), (src, dst)), shape=(size, size))
    _, component = connected_components(graph, directed=False)
    return component[r_inv], component[n_r:]


def _choose(
    rows: np.ndarray, cols: np.ndarray, weight: np.ndarray, n_cols: int, groups: Groups
) -> tuple[np.ndarray, np.ndarray]:
    """Chosen edges and chosen groups: the best total of edge weights (all > 0) and of the
    chosen groups' bonuses, each row and column used once, a group's new columns only if
    it is chosen, its old ones only if not. Candidates without a group are matchings
    (`_match`); the others small integer programs, solved exactly."""
    chosen_group = np.zeros(len(groups), bool)
    if not len(groups):
        return _match(rows, cols, weight), chosen_group
    edge_group, col_group = _components(rows, cols, n_cols, groups)
    of_group = col_group[groups.old[:, 0]]
    with_group = np.zeros(col_group.max() + 1, bool)
    with_group[of_group] = True
    plain = ~with_group[edge_group]
    chosen = [np.flatnonzero(plain)[_match(rows[plain], cols[plain], weight[plain])]]
    # prefer the segmenter's cells when the choice is even (a deterministic tie-break)
    score = groups.bonus - 1e-6
    for component in np.flatnonzero(with_group):
        edges = np.flatnonzero(edge_group == component)
        members = np.flatnonzero(of_group == component)
        if not len(edges) and (score[members] <= 0).all():
            continue
        sub = Groups(groups.old[members], groups.new[members], score[members])
        picked, picked_groups = _program(rows[edges], cols[edges], weight[edges], sub)
        chosen.append(edges[picked])
        chosen_group[members[picked_groups]] = True
    return np.sort(np.concatenate(chosen)), chosen_group


def _program(
    rows: np.ndarray, cols: np.ndarray, weight: np.ndarray, groups: Groups
) -> tuple[np.ndarray, np.ndarray]:
    """One component of `_choose` as an integer program: variables are the edges, then one
    per group (chosen or not); `groups.bonus` is what choosing each scores."""
    n_e, n_g = len(rows), len(groups)
    r_ids, r_inv = np.unique(rows, return_inverse=True)
    members = np.concatenate([groups.old, groups.new], axis=1)
    c_ids, c_inv = np.unique(np.concatenate([cols, members[members >= 0]]), return_inverse=True)
    e_col = c_inv[:n_e]
    n_r, n_c = len(r_ids), len(c_ids)
    # rows: one successor each; columns: one predecessor; an old column none if its group
    # is chosen, a new column one only if it is
    a = np.zeros((n_r + n_c, n_e + n_g))
    a[r_inv, np.arange(n_e)] = 1
    a[n_r + e_col, np.arange(n_e)] = 1
    upper = np.ones(n_r + n_c)
    for g in range(n_g):
        for cell in groups.old[g][groups.old[g] >= 0]:
            a[n_r + np.searchsorted(c_ids, cell), n_e + g] = 1
        for node in groups.new[g][groups.new[g] >= 0]:
            a[n_r + np.searchsorted(c_ids, node), n_e + g] = -1
            upper[n_r + np.searchsorted(c_ids, node)] = 0
    cost = -np.concatenate([weight, groups.bonus])
    result = milp(
        cost,
        integrality=np.ones(n_e + n_g),
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
    groups: Groups | None = None,
) -> PairSolution:
    """Predecessors of the `n_dst` cells of t+1.

    `links` go from the `n_src` cells of t; `gap_links` from cells of t-1, of which only
    `open_rows` (those without a successor in t) may be used. With `groups` (alternative
    cells among the targets, e.g. candidate unions), the solution's `present` says which
    targets were chosen.
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
    if groups is None:
        groups = Groups(np.zeros((0, 2), np.int64), np.zeros((0, 2), np.int64), np.zeros(0))
    picked, chosen_groups = _choose(rows[positive], cols[positive], weight[positive], n_dst, groups)
    chosen = np.flatnonzero(positive)[picked]
    source = np.full(n_dst, -1, np.int64)
    from_gap = np.zeros(n_dst, bool)
    picked_rows, picked_cols = rows[chosen], cols[chosen]
    source[picked_cols] = np.where(
        picked_rows >= base, picked_rows - base, np.mod(picked_rows, max(n_src, 1))
    )
    from_gap[picked_cols] = picked_rows >= base
    if not len(groups):
        return PairSolution(source, from_gap)
    present = np.ones(n_dst, bool)
    new, old = groups.new[~chosen_groups], groups.old[chosen_groups]
    present[new[new >= 0]] = False
    present[old[old >= 0]] = False
    return PairSolution(source, from_gap, present)
