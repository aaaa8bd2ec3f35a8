"""The solver and the online lineage: optimal, consistent, and a valid CTC result."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from inference.ctc_rules import is_valid, validate_result
from inference.io import write_result
from inference.tracking.lineage import LineageBuilder, relabel
from inference.tracking.solve import Links, SolverParams, _match, solve_pair

NONE = np.zeros(0, np.int64)


def _links(triples):
    src, dst, logit = zip(*triples, strict=True) if triples else ((), (), ())
    return Links(np.asarray(src, np.int64), np.asarray(dst, np.int64), np.asarray(logit, float))


def test_continuations_take_the_best_total():
    # cell 0 prefers target 0 slightly, cell 1 can only go to target 0: the global optimum
    # gives target 0 to cell 1 and target 1 to cell 0 (a greedy rule would lose cell 1)
    links = _links([(0, 0, 5.0), (0, 1, 4.5), (1, 0, 4.0)])
    sol = solve_pair(2, 2, links, Links.empty(), NONE, SolverParams())
    np.testing.assert_array_equal(sol.source, [1, 0])
    assert not sol.from_gap.any()


def test_unlikely_links_are_not_made():
    links = _links([(0, 0, -0.5), (1, 1, 2.0)])
    sol = solve_pair(2, 2, links, Links.empty(), NONE, SolverParams())
    np.testing.assert_array_equal(sol.source, [-1, 1])


@pytest.mark.parametrize(("cost", "divides"), [(1.0, True), (5.0, False)])
def test_division_needs_both_daughters_above_its_cost(cost, divides):
    links = _links([(0, 0, 4.0), (0, 1, 3.0)])
    sol = solve_pair(1, 2, links, Links.empty(), NONE, SolverParams(division_cost=cost))
    assert sol.children(1).tolist() == ([2] if divides else [1])


def test_never_more_than_two_daughters():
    links = _links([(0, j, 6.0) for j in range(4)])
    sol = solve_pair(1, 4, links, Links.empty(), NONE, SolverParams(division_cost=0.1))
    assert sol.children(1).tolist() == [2]
    assert (sol.source >= 0).sum() == 2


def test_gap_links_only_from_open_cells():
    gap = _links([(0, 0, 5.0), (1, 1, 5.0)])
    sol = solve_pair(0, 2, Links.empty(), gap, np.array([1]), SolverParams(gap_cost=1.0))
    np.testing.assert_array_equal(sol.source, [-1, 1])
    np.testing.assert_array_equal(sol.from_gap, [False, True])


def test_a_direct_link_beats_a_weaker_gap_link():
    links = _links([(0, 0, 3.0)])
    gap = _links([(0, 0, 3.0)])
    sol = solve_pair(1, 1, links, gap, np.array([0]), SolverParams(gap_cost=1.0))
    assert sol.source.tolist() == [0] and not sol.from_gap[0]


def test_random_scores_always_give_a_consistent_solution():
    rng = np.random.default_rng(0)
    for _ in range(50):
        n_src, n_dst, n_old = rng.integers(0, 8, size=3)
        triples = [
            (i, j, rng.normal(1, 3))
            for i in range(n_src)
            for j in range(n_dst)
            if rng.random() < 0.5
        ]
        gap_triples = [
            (i, j, rng.normal(0, 3))
            for i in range(n_old)
            for j in range(n_dst)
            if rng.random() < 0.3
        ]
        open_rows = np.flatnonzero(rng.random(n_old) < 0.5)
        sol = solve_pair(
            n_src,
            n_dst,
            _links(triples),
            _links(gap_triples),
            open_rows,
            SolverParams(rng.uniform(0.1, 3), rng.uniform(0, 3)),
        )
        assert sol.source.shape == (n_dst,)
        assert (sol.children(n_src) <= 2).all()
        assert np.isin(sol.source[sol.from_gap], open_rows).all()
        chosen = {
            (int(s), int(j), bool(g))
            for j, (s, g) in enumerate(zip(sol.source, sol.from_gap, strict=True))
            if s >= 0
        }
        allowed = {(i, j, False) for i, j, w in triples if w > 0}
        allowed |= {(i, j, True) for i, j, w in gap_triples}
        assert chosen <= allowed


def test_matching_by_groups_is_a_maximum_weight_matching():
    # solving each connected group of candidates alone loses nothing against one assignment
    # over the whole frame pair (zero weight = no edge)
    rng = np.random.default_rng(1)
    for trial in range(300):
        n_rows, n_cols = rng.integers(1, 25, size=2)
        pairs = np.argwhere(rng.random((n_rows, n_cols)) < rng.uniform(0.02, 0.4))
        rng.shuffle(pairs)
        weight = rng.uniform(0.01, 5.0, len(pairs))
        if trial % 3 == 0:
            weight = np.round(weight) + 1.0  # ties
        chosen = _match(pairs[:, 0], pairs[:, 1], weight)
        rows, cols = pairs[chosen, 0], pairs[chosen, 1]
        assert len(set(rows.tolist())) == len(rows) and len(set(cols.tolist())) == len(cols)
        full = np.zeros((n_rows, n_cols))
        full[pairs[:, 0], pairs[:, 1]] = weight
        r, c = linear_sum_assignment(full, maximize=True)
        np.testing.assert_allclose(weight[chosen].sum(), full[r, c].sum())


def test_lineage_labels_divisions_and_gaps(tmp_path):
    """Frame 0: a, b. Frame 1: a continues, b divides. Frame 2: a missed. Frame 3: a back."""
    builder = LineageBuilder()
    labels = [builder.start(0, 2)]
    steps = [
        (3, _links([(0, 0, 5), (1, 1, 5), (1, 2, 4)]), Links.empty(), NONE),
        (2, _links([(1, 0, 5), (2, 1, 5)]), Links.empty(), np.array([], np.int64)),
        (3, _links([(0, 1, 5), (1, 2, 5)]), _links([(0, 0, 5)]), np.array([0])),
    ]
    sizes = [2]
    has_next = {}
    for t, (n, links, gap, _) in enumerate(steps, start=1):
        open_rows = np.flatnonzero(~has_next[t - 2]) if t >= 2 else NONE
        sol = solve_pair(sizes[-1], n, links, gap, open_rows, SolverParams(1.0, 1.0))
        has_next[t - 1] = sol.children(sizes[-1]) > 0
        labels.append(builder.advance(t, sol, labels[-1], labels[-2] if t >= 2 else NONE))
        sizes.append(n)
    tracks = {t.label: (t.begin, t.end, t.parent) for t in builder.tracks()}
    assert tracks == {1: (0, 1, 0), 2: (0, 0, 0), 3: (1, 3, 2), 4: (1, 3, 2), 5: (3, 3, 1)}
    # write it as masks (cell k of frame t is a 2x2 square) and let the validator judge
    masks = []
    for frame_labels in labels:
        index = np.zeros((8, 8), np.int32)
        for k in range(len(frame_labels)):
            index[2 * k : 2 * k + 2, 0:2] = k + 1
        masks.append(relabel(index, frame_labels))
    out = write_result(tmp_path / "res", masks, builder.tracks(), n_frames=4)
    assert is_valid(validate_result(out))


def _triples(links: Links) -> list[tuple[int, int, float]]:
    """(source, target, logit) of every candidate link."""
    return list(zip(links.src.tolist(), links.dst.tolist(), links.logit.tolist(), strict=True))


def _objective(sol, n_src, links, gap_links, params) -> float:
    """The solver's objective of a solution: logits, less the division and gap costs."""
    direct = {(i, j): w for i, j, w in _triples(links)}
    gap = {(i, j): w for i, j, w in _triples(gap_links)}
    total = 0.0
    for j, (i, from_gap) in enumerate(zip(sol.source.tolist(), sol.from_gap.tolist(), strict=True)):
        if i >= 0:
            total += gap[i, j] - params.gap_cost if from_gap else direct[i, j]
    return total - params.division_cost * int((sol.children(n_src) == 2).sum())


def _brute_force(n_dst, links, gap_links, open_rows, params) -> float:
    """The best objective over every choice of predecessor for each cell of t+1, under the
    rules: a cell of t has at most two successors, an open cell of t-1 at most one."""
    choices: list[list] = [[None] for _ in range(n_dst)]
    for i, j, w in _triples(links):
        choices[j].append(("t", i, w))
    for i, j, w in _triples(gap_links):
        if i in open_rows:
            choices[j].append(("gap", i, w - params.gap_cost))
    best = 0.0
    for pick in itertools.product(*choices):
        chosen = [c for c in pick if c is not None]
        successors = Counter(i for kind, i, _ in chosen if kind == "t")
        bridged = Counter(i for kind, i, _ in chosen if kind == "gap")
        if max(successors.values(), default=0) > 2 or max(bridged.values(), default=0) > 1:
            continue
        divisions = sum(n == 2 for n in successors.values())
        best = max(best, sum(w for *_, w in chosen) - params.division_cost * divisions)
    return best


def test_the_solution_is_the_brute_force_optimum():
    """Small random frame pairs: the solver's lineage scores exactly the best possible, a gap
    is bridged only where its logit beats the gap cost, each open cell bridges at most once,
    and no cell has more than two daughters."""
    rng = np.random.default_rng(19)
    bridged_somewhere = divided_somewhere = 0
    for _ in range(400):
        n_src, n_dst, n_old = (
            int(rng.integers(0, 4)),
            int(rng.integers(1, 5)),
            int(rng.integers(0, 3)),
        )
        links = _links(
            [
                (i, j, rng.normal(1, 3))
                for i in range(n_src)
                for j in range(n_dst)
                if rng.random() < 0.7
            ]
        )
        gap_links = _links(
            [
                (i, j, rng.normal(2, 3))
                for i in range(n_old)
                for j in range(n_dst)
                if rng.random() < 0.7
            ]
        )
        open_rows = np.flatnonzero(rng.random(n_old) < 0.7)
        params = SolverParams(rng.uniform(0.1, 3), rng.uniform(0.1, 3))
        sol = solve_pair(n_src, n_dst, links, gap_links, open_rows, params)
        assert (sol.children(n_src) <= 2).all()
        gap_sources = sol.source[sol.from_gap].tolist()
        assert len(set(gap_sources)) == len(gap_sources)  # each open cell bridges once
        assert set(gap_sources) <= set(open_rows.tolist())
        logit = {(i, j): w for i, j, w in _triples(gap_links)}
        for j in np.flatnonzero(sol.from_gap).tolist():
            assert logit[int(sol.source[j]), j] > params.gap_cost
        best = _brute_force(n_dst, links, gap_links, open_rows.tolist(), params)
        assert _objective(sol, n_src, links, gap_links, params) == pytest.approx(best, abs=1e-9)
        bridged_somewhere += bool(gap_sources)
        divided_somewhere += bool((sol.children(n_src) == 2).any())
    assert bridged_somewhere > 50 and divided_somewhere > 20  # the cases hold both events
