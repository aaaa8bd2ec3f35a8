"""Candidate edges, window graphs, the EdgeMPNN and the embedding network."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from inference.embedding import Embedder, ResNet
from inference.features import feature_columns
from inference.gnn import EdgeMPNN
from inference.graph import (
    EDGE_FEATURES,
    NODE_FEATURES,
    FrameNodes,
    GraphSpec,
    build_window,
    candidate_pairs,
)
from inference.model_folder import save_model_folder


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Small models: extra threads only add overhead on a shared CPU (restored afterwards)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _frame(t: int, points: list[tuple[float, float]], dim: int = 4) -> FrameNodes:
    n = len(points)
    table = pd.DataFrame(0.0, index=range(n), columns=feature_columns(2))
    table["frame"], table["label"] = t, np.arange(1, n + 1)
    for k, (y, x) in enumerate(points):
        table.loc[k, ["centroid_y", "centroid_x"]] = y, x
        table.loc[k, ["bbox_min_y", "bbox_min_x", "bbox_max_y", "bbox_max_x"]] = (
            y - 2,
            x - 2,
            y + 3,
            x + 3,
        )
    table[["area", "major_axis", "minor_axis", "elongation"]] = 25.0, 5.0, 5.0, 1.0
    table[["mean_intensity", "std_intensity", "min_intensity", "max_intensity"]] = 10, 1, 8, 12
    table["border_distance"] = 50.0
    emb = np.random.default_rng(t).normal(size=(n, dim)).astype(np.float32)
    return FrameNodes(t, table, emb / np.linalg.norm(emb, axis=1, keepdims=True))


def test_candidates_keep_the_nearest_within_the_radius():
    a = np.array([[0.0, 0.0]])
    b = np.array([[1.0, 0.0], [0.0, 3.0], [10.0, 0.0], [0.0, 2.0]])
    i, j, d = candidate_pairs(a, b, radius=5.0, k=2)
    assert i.tolist() == [0, 0] and j.tolist() == [0, 3]
    np.testing.assert_allclose(d, [1.0, 2.0])
    assert len(candidate_pairs(a, np.zeros((0, 2)), 5.0, 3)[0]) == 0


def test_window_graph_joins_next_and_second_next_frames():
    spec = GraphSpec(ndim=2, radius=5.0, radius_gap=8.0, max_candidates=3)
    frames = [_frame(10, [(0, 0), (50, 50)]), _frame(11, [(1, 1)]), _frame(12, [(2, 2), (52, 50)])]
    frames.insert(2, _frame(11, []))  # an empty frame breaks nothing
    frames = [frames[0], frames[1], frames[3]]
    graph = build_window(frames, spec)
    assert graph.x.shape == (5, len(NODE_FEATURES[2]))
    assert graph.edge_attr.shape[1] == len(EDGE_FEATURES[2])
    edges = {tuple(e) for e in graph.edges.tolist()}
    # (source frame, source row, gap, target row)
    assert edges == {(10, 0, 1, 0), (11, 0, 1, 0), (10, 0, 2, 0), (10, 1, 2, 1)}
    src, dst = graph.edge_index
    assert (src < dst).all()


def test_empty_window_has_no_edges():
    spec = GraphSpec(ndim=2, radius=5.0, radius_gap=8.0)
    graph = build_window([_frame(0, []), _frame(1, [])], spec)
    assert graph.edge_index.shape == (2, 0) and graph.x.shape[0] == 0


@pytest.mark.parametrize("dim", [0, 4])
def test_edge_mpnn_scores_every_edge(dim):
    torch.manual_seed(0)
    spec = GraphSpec(ndim=2, radius=5.0, radius_gap=8.0)
    frames = [_frame(t, [(0, 0), (3, 3), (20, 20)], dim=max(dim, 1)) for t in range(3)]
    if dim == 0:
        frames = [FrameNodes(f.frame, f.table, np.zeros((3, 0), np.float32)) for f in frames]
    graph = build_window(frames, spec)
    model = EdgeMPNN(len(NODE_FEATURES[2]), len(EDGE_FEATURES[2]), dim, blocks=2)
    logits = model(graph.x, graph.emb, graph.edge_index, graph.edge_attr)
    assert logits.shape == (graph.edge_index.shape[1],) and torch.isfinite(logits).all()
    # it can learn: a few steps on one graph fit its labels
    labels = (torch.arange(len(logits)) % 2).float()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-2)
    for _ in range(100):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            model(graph.x, graph.emb, graph.edge_index, graph.edge_attr), labels
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.1


@pytest.mark.parametrize(("ndim", "size"), [(2, (16, 16)), (3, (6, 16, 16))])
def test_resnet_gives_unit_vectors_and_round_trips(tmp_path, ndim, size):
    torch.manual_seed(0)
    model = ResNet(ndim, channels=(4, 8), blocks=(1, 1), dim=8).eval()
    crops = np.random.default_rng(0).random((5, *size)).astype(np.float32)
    embedder = Embedder(model, size, size, "")
    vectors = embedder.embed_crops(crops)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    save_model_folder(tmp_path / "emb", "embedding", embedder.config(), model.state_dict())
    loaded = Embedder.from_folder(tmp_path / "emb")
    np.testing.assert_allclose(loaded.embed_crops(crops), vectors, atol=1e-6)
    assert loaded.sha256 and loaded.extent == size
