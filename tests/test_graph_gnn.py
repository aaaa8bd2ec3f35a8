"""Candidate edges, window graphs, the EdgeMPNN and the embedding network."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from inference.cells.features import feature_columns
from inference.models.embedding import Embedder, ResNet, inference_copy
from inference.models.folder import save_model_folder
from inference.models.gnn import EdgeMPNN, PDNConv
from inference.tracking.graph import (
    EDGE_FEATURES,
    NODE_FEATURES,
    FrameNodes,
    GraphSpec,
    build_window,
    candidate_pairs,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


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


def _random_graph(n: int, edges: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Node indices (src, dst) of `edges` random edges between distinct nodes."""
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(0, n, (edges,), generator=g)
    dst = (src + 1 + torch.randint(0, n - 1, (edges,), generator=g)) % n
    return src, dst


@pytest.mark.parametrize(("n", "edges"), [(5, 3), (60, 400), (700, 5000)])
def test_pdn_conv_is_torch_geometrics(n, edges):
    pyg = pytest.importorskip("torch_geometric.nn")
    torch.manual_seed(3)
    ref = pyg.PDNConv(32, 32, 64, hidden_channels=32)
    torch.manual_seed(3)
    ours = PDNConv(32, 32, 64, hidden_channels=32)
    # same parameters, drawn the same way: a seed gives the same network
    assert list(ours.state_dict()) == list(ref.state_dict())
    for key, value in ref.state_dict().items():
        assert torch.equal(ours.state_dict()[key], value), key
    src, dst = _random_graph(n, edges, seed=n)
    x, edge_attr = torch.randn(n, 32), torch.randn(2 * edges, 64)
    both = torch.stack([torch.cat([src, dst]), torch.cat([dst, src])])
    with torch.no_grad():
        expected = ref(x, both, edge_attr)
        got = ours(x, both[0], both[1], ours.edge_weights(edge_attr))
    assert torch.equal(got, expected)  # the same arithmetic, bit for bit


def test_edge_mpnn_inference_and_training_paths_agree():
    torch.manual_seed(0)
    model = EdgeMPNN(11, 8, 4, blocks=2)
    src, dst = _random_graph(40, 150, seed=1)
    args = (torch.randn(40, 11), torch.randn(40, 4), torch.stack([src, dst]), torch.randn(150, 8))
    with torch.no_grad():
        fast = model(*args)
    assert torch.equal(model(*args).detach(), fast)


@pytest.mark.parametrize(("ndim", "size"), [(2, (16, 16)), (3, (6, 16, 16))])
def test_inference_copy_of_the_embedding_agrees_and_follows_weight_changes(ndim, size):
    torch.manual_seed(0)
    model = ResNet(ndim, channels=(4, 8), blocks=(1, 1), dim=8)
    for module in model.modules():  # batch norms with statistics of their own
        if isinstance(module, (torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            torch.nn.init.uniform_(module.weight, 0.5, 1.5)
    model.eval()
    crops = np.random.default_rng(0).random((7, *size)).astype(np.float32)
    embedder = Embedder(model, size, size, "")
    with torch.no_grad():
        plain = model(torch.from_numpy(crops)[:, None]).numpy()
    np.testing.assert_allclose(embedder.embed_crops(crops), plain, atol=1e-5)
    fast = inference_copy(model)
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in fast.modules())
    with torch.no_grad():
        model.head.weight.mul_(-1.0)  # an in-place update, as by an optimiser step
        changed = model(torch.from_numpy(crops)[:, None]).numpy()
    np.testing.assert_allclose(embedder.embed_crops(crops), changed, atol=1e-5)
