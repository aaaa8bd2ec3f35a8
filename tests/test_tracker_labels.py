"""Edge labels for training the GNN where cells come from a segmentation matched to markers."""

from __future__ import annotations

import numpy as np
import torch

from inference.cells.features import compact_labels, frame_features
from inference.io import Track
from inference.tracking.graph import FrameNodes, GraphSpec
from training.tracked import Lineage
from training.tracker.tune_costs import lineage_scores
from training.tracker.window_graphs import TrackedNodes, labelled_window


def _frame(t: int, ids: list[int], shift: int) -> TrackedNodes:
    """Two 6x6 cells: the left one claimed by marker ids[0], the right one by ids[1]."""
    mask = np.zeros((40, 60), np.uint16)
    mask[10:16, 10 + shift : 16 + shift] = 1
    mask[10:16, 40 + shift : 46 + shift] = 2
    compact = compact_labels(mask)
    table = frame_features(mask, np.ones_like(mask), t, compact)
    nodes = FrameNodes(t, table, np.zeros((len(table), 0), np.float32))
    return TrackedNodes(nodes, np.asarray(ids, np.int64))


def test_edges_of_detections_no_marker_claims_are_left_out_of_the_loss():
    frames = [_frame(0, [1, 0], 0), _frame(1, [1, 0], 1)]  # the right object: debris
    lineage = Lineage.read_tracks([Track(1, 0, 1, 0)])
    spec = GraphSpec(ndim=2, radius=50.0, radius_gap=50.0)
    graph = labelled_window(frames, lineage, spec)
    edges = graph.graph.edges  # (frame, row in frame, gap, row in later frame)
    debris = (edges[:, 1] == 1) | (edges[:, 3] == 1)
    assert debris.any() and (~debris).any()
    assert not graph.known[torch.from_numpy(debris)].any()  # debris -> anything: unknown
    assert graph.known[torch.from_numpy(~debris)].all()
    cell = (edges[:, 1] == 0) & (edges[:, 3] == 0)
    assert graph.labels[torch.from_numpy(cell)].tolist() == [1.0]
    both_claimed = [_frame(0, [1, 2], 0), _frame(1, [1, 2], 1)]
    lineage = Lineage.read_tracks([Track(1, 0, 1, 0), Track(2, 0, 1, 0)])
    assert labelled_window(both_claimed, lineage, spec).known.all()


def test_a_division_into_an_unclaimed_detection_counts_as_false():
    frames = [_frame(0, [1, 2], 0), _frame(1, [1, 0], 1), _frame(2, [3, 4], 2)]
    # cell 1 continues, cell 2 ends; in frame 2 cell 1 divides into 3 and 4
    truth = {(0, 0, 1, 0), (1, 0, 2, 0), (1, 0, 2, 1)}
    right = {(0, 0, 1, 0), (1, 0, 2, 0), (1, 0, 2, 1)}
    debris_link = right | {(0, 1, 1, 1)}  # cell 2 linked to the unclaimed object
    into_debris = right | {(0, 0, 1, 1)}  # cell 1 'divides' into the unclaimed object
    assert lineage_scores(right, truth, frames) == {"link_f1": 1.0, "division_f1": 1.0}
    assert lineage_scores(debris_link, truth, frames) == {"link_f1": 1.0, "division_f1": 1.0}
    assert lineage_scores(into_debris, truth, frames) == {"link_f1": 1.0, "division_f1": 2 / 3}
    no_division = {(0, 0, 1, 0)}
    assert lineage_scores(no_division, no_division, frames[:2])["division_f1"] is None


def test_two_pieces_of_one_split_cell_are_no_true_division():
    frames = [_frame(0, [1, 0], 0), _frame(1, [1, 1], 1)]  # the segmentation split cell 1
    truth = {(0, 0, 1, 0), (0, 0, 1, 1)}  # both pieces carry id 1: links, not daughters
    scores = lineage_scores({(0, 0, 1, 0), (0, 0, 1, 1)}, truth, frames)
    assert scores == {"link_f1": 1.0, "division_f1": None}
