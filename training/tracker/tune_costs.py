"""Choosing the solver's costs on validation frames, by the lineage they produce.

The GNN scores the validation frames once, window by window as in tracking; then every pair
of (division cost, gap cost) on a small grid is solved and its links compared with the
ground truth: link F1 (every predecessor, direct or across a gap) plus, where the validation
frames hold divisions, division F1. Also reports the GNN's raw edge accuracy.
"""

from __future__ import annotations

import itertools

import numpy as np

from inference.models.tracker import Tracker
from inference.tracking.solve import SolverParams, solve_pair
from inference.tracking.stream import EdgeScores
from training.tracked import Lineage
from training.tracker.window_graphs import TrackedNodes, true_links, window_starts

DIVISION_COSTS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
GAP_COSTS = (0.5, 1.0, 2.0, 4.0, 8.0)

Link = tuple[int, int, int, int]  # source frame, source row, target frame, target row


def score_frames(frames: list[TrackedNodes], tracker: Tracker) -> EdgeScores:
    """Mean logits of every candidate edge, windows scheduled as `gnntrack track` does."""
    scores = EdgeScores()
    first = frames[0].nodes.frame if frames else 0
    for start, stop in window_starts(len(frames), tracker.window, tracker.stride):
        edges, logits = tracker.score([f.nodes for f in frames[start:stop]])
        edges = edges.copy()
        edges[:, 0] -= first
        scores.add(edges, logits)
    return scores


def predicted_links(sizes: list[int], scores: EdgeScores, params: SolverParams) -> set[Link]:
    """Links chosen by the solver over frames with `sizes` cells (frames counted from 0)."""
    links: set[Link] = set()
    has_next: dict[int, np.ndarray] = {}
    for t in range(1, len(sizes)):
        open_rows = np.flatnonzero(~has_next[t - 2]) if t >= 2 else np.zeros(0, np.int64)
        solution = solve_pair(
            sizes[t - 1],
            sizes[t],
            scores.links(t - 1, 1),
            scores.links(t - 2, 2),
            open_rows,
            params,
        )
        has_next[t - 1] = solution.children(sizes[t - 1]) > 0
        for j in np.flatnonzero(solution.source >= 0):
            gap = 2 if solution.from_gap[j] else 1
            links.add((t - gap, int(solution.source[j]), t, int(j)))
    return links


def ground_truth_links(frames: list[TrackedNodes], lineage: Lineage) -> set[Link]:
    """Each cell's true predecessor in the previous frame, else across one missing frame."""
    links: set[Link] = set()
    for t in range(1, len(frames)):
        i, j = true_links(frames[t - 1], frames[t], lineage)
        links |= {(t - 1, int(a), t, int(b)) for a, b in zip(i, j, strict=True)}
        if t >= 2:
            found = set(j.tolist())
            i2, j2 = true_links(frames[t - 2], frames[t], lineage)
            links |= {
                (t - 2, int(a), t, int(b)) for a, b in zip(i2, j2, strict=True) if b not in found
            }
    return links


def claimed_only(links: set[Link], frames: list[TrackedNodes]) -> set[Link]:
    """`links` between cells some marker claims: links of unclaimed detections (id 0) are
    neither right nor wrong as far as the ground truth knows."""
    return {(a, i, b, j) for a, i, b, j in links if frames[a].ids[i] > 0 and frames[b].ids[j] > 0}


def _f1(predicted: set, truth: set) -> float:
    if not predicted and not truth:
        return 1.0
    return 2 * len(predicted & truth) / (len(predicted) + len(truth))


def _mothers(links: set[Link]) -> set[tuple[int, int]]:
    counts: dict[tuple[int, int], int] = {}
    for a, i, b, _ in links:
        if b == a + 1:
            counts[(a, i)] = counts.get((a, i), 0) + 1
    return {k for k, v in counts.items() if v >= 2}


def lineage_scores(
    predicted: set[Link], truth: set[Link], frames: list[TrackedNodes] | None = None
) -> dict[str, float | None]:
    """Link F1 and division F1 of predicted links.

    With `frames`, links touching a detection no marker claims are left out of the link F1,
    but a claimed cell that divides into one counts as a division (the CTC sees a false one).
    Division F1 is None without true divisions (scoring "no division predicted" as a
    perfect 1 there made checkpoint selection prefer a degenerate GNN on MSC).
    """
    mothers, true_mothers = _divisions(predicted, truth, frames)
    if frames is not None:
        predicted = claimed_only(predicted, frames)
    division = _f1(mothers, true_mothers) if true_mothers else None
    return {"link_f1": _f1(predicted, truth), "division_f1": division}


def _divisions(
    predicted: set[Link], truth: set[Link], frames: list[TrackedNodes] | None
) -> tuple[set[tuple[int, int]], set[tuple[int, int]]]:
    """Predicted and true mothers. With `frames`, a predicted mother must be a claimed cell,
    and a true one must have a daughter of another id: two pieces of one cell that our
    segmentation split both carry the cell's id, which is no division in the lineage."""
    mothers, true_mothers = _mothers(predicted), _mothers(truth)
    if frames is not None:
        mothers = {(t, i) for t, i in mothers if frames[t].ids[i] > 0}
        new_ids = {
            (a, i) for a, i, b, j in truth if b == a + 1 and frames[b].ids[j] != frames[a].ids[i]
        }
        true_mothers &= new_ids
    return mothers, true_mothers


def lineage_quality(
    frames: list[TrackedNodes], lineage: Lineage, tracker: Tracker
) -> dict[str, float | None]:
    """Link and division F1 of `tracker` (its current solver costs) on `frames`."""
    scores = score_frames(frames, tracker)
    predicted = predicted_links([len(f.nodes) for f in frames], scores, tracker.solver)
    return lineage_scores(predicted, ground_truth_links(frames, lineage), frames)


def tune_solver(
    frames: list[TrackedNodes], lineage: Lineage, tracker: Tracker
) -> tuple[SolverParams, dict[str, float | None]]:
    """The grid point with the best link F1 + division F1 on `frames`, and its scores.

    Among equally good points the one nearest the default costs wins, so that frames without
    a division or a gap do not push those costs to an extreme. On frames without a division
    the division term is 1 / (1 + false divisions): fewer false ones score higher.
    """
    scores = score_frames(frames, tracker)
    sizes = [len(f.nodes) for f in frames]
    truth = ground_truth_links(frames, lineage)
    default = SolverParams()
    candidates = []
    for division_cost, gap_cost in itertools.product(DIVISION_COSTS, GAP_COSTS):
        params = SolverParams(division_cost, gap_cost)
        predicted = predicted_links(sizes, scores, params)
        result = lineage_scores(predicted, truth, frames)
        division = result["division_f1"]
        if division is None:  # no division here: each predicted one is false, and costs
            division = 1.0 / (1 + len(_divisions(predicted, truth, frames)[0]))
        total = result["link_f1"] + division
        # ties (e.g. no division among the validation frames) go to the default costs
        offset = abs(np.log(division_cost / default.division_cost)) + abs(
            np.log(gap_cost / default.gap_cost)
        )
        candidates.append((-total, offset, params, result))
    _, _, params, result = min(candidates, key=lambda c: (c[0], c[1]))
    return params, result
