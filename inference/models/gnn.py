"""EdgeMPNN: the published edge-oriented message-passing network, in plain torch.

Nodes (cells) are encoded from hand-made features and the appearance vector; each candidate
edge starts from its geometry, the |difference| and cosine similarity of its ends' inputs and
encodings. Blocks alternate a node update (PDN convolution: a small MLP turns each edge vector
into a sigmoid weight of a GCN-normalised neighbour sum, over both edge directions so a cell
hears about the frames before and after) and an edge update from the edge and its two ends.
A classifier turns the final edge vector into one logit: "the target continues the source
cell" (same track, or a daughter of a dividing source).

The PDN convolution is torch-geometric's `PDNConv` written out in a few tensor operations:
same parameters (names, shapes, initialisation) and the same arithmetic in the same order,
so trained weights load unchanged and give the same logits to the last bit, without
importing torch-geometric (over a second of start-up) and with less indexing overhead.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


def mlp(sizes: list[int], last_relu: bool = True) -> nn.Sequential:
    """Linear layers of `sizes` with ReLU between (and after the last with `last_relu`)."""
    layers: list[nn.Module] = []
    for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if k < len(sizes) - 2 or last_relu:
            layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def _ends(x: torch.Tensor, src: torch.Tensor, dst: torch.Tensor) -> list[torch.Tensor]:
    """x[src], x[dst] and their `_pair`, as the columns of an edge vector.

    Without gradients the rows are gathered once by `index_select` (several times faster).
    Training gathers them anew for each use, as before: the same values, but gradients
    summed in the order the shipped models were trained with.
    """
    if torch.is_grad_enabled():
        return [x[src], x[dst], *_pair(x[src], x[dst])]
    x_s, x_d = x.index_select(0, src), x.index_select(0, dst)
    return [x_s, x_d, *_pair(x_s, x_d)]


def _pair(a: torch.Tensor, b: torch.Tensor) -> list[torch.Tensor]:
    """|a - b| and cosine similarity (one column) of row-aligned vectors."""
    return [(a - b).abs(), F.cosine_similarity(a, b, dim=1, eps=1e-6)[:, None]]


def _glorot(weight: torch.Tensor) -> None:
    """torch-geometric's `glorot`: uniform in +-sqrt(6 / (fan_in + fan_out))."""
    bound = math.sqrt(6.0 / (weight.size(-2) + weight.size(-1)))
    with torch.no_grad():
        weight.uniform_(-bound, bound)


class PDNConv(nn.Module):
    """Pathfinder discovery convolution (Rathi et al. 2020), as torch-geometric's `PDNConv`.

    x'_i = bias + sum over j in N(i) and i itself of w_ji / sqrt(d_i d_j) * (lin x_j), with
    edge weights w = sigmoid(MLP(edge vector)), self loops of weight 1 and d the weighted
    in-degree (GCN normalisation). Parameters are created and initialised exactly as there,
    so a given seed gives the same network.
    """

    def __init__(
        self, in_channels: int, out_channels: int, edge_dim: int, hidden_channels: int
    ) -> None:
        super().__init__()
        self.lin = nn.Linear(in_channels, out_channels, bias=False)
        self.mlp = nn.Sequential(
            nn.Linear(edge_dim, hidden_channels),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_channels, 1),
            nn.Sigmoid(),
        )
        self.bias = nn.Parameter(torch.empty(out_channels))
        for weight in (self.lin.weight, self.mlp[0].weight, self.mlp[2].weight):
            _glorot(weight)
        for bias in (self.mlp[0].bias, self.mlp[2].bias, self.bias):
            nn.init.zeros_(bias)

    def edge_weights(self, edge_attr: torch.Tensor) -> torch.Tensor:
        """The weight in (0, 1) of each edge (E,) from its vector (E, edge_dim)."""
        return self.mlp(edge_attr).squeeze(-1)

    def forward(
        self, x: torch.Tensor, source: torch.Tensor, target: torch.Tensor, weight: torch.Tensor
    ) -> torch.Tensor:
        """Convolve node vectors `x` (N, in) over the edges source -> target with `weight`.

        The edges must hold no self loops (each node gets one of weight 1 here).
        """
        n = x.size(0)
        loop = torch.arange(n, device=x.device)
        row, col = torch.cat([source, loop]), torch.cat([target, loop])
        weight = torch.cat([weight, weight.new_ones(n)])
        degree = weight.new_zeros(n).scatter_add_(0, col, weight)
        inv_sqrt = degree.pow_(-0.5)
        inv_sqrt.masked_fill_(inv_sqrt == float("inf"), 0)
        norm = inv_sqrt[row] * weight * inv_sqrt[col]
        values = self.lin(x)
        messages = norm.view(-1, 1) * values.index_select(0, row)
        out = values.new_zeros(n, values.size(1))
        out.scatter_add_(0, col.view(-1, 1).expand_as(messages), messages)
        return out + self.bias


class EdgeMPNN(nn.Module):
    """Edge classifier over a tracking graph (`inference.tracking.graph.WindowGraph`)."""

    def __init__(
        self,
        node_features: int,
        edge_features: int,
        embedding_dim: int,
        node_hidden: int = 16,
        edge_hidden: int = 64,
        blocks: int = 6,
    ) -> None:
        super().__init__()
        self.arch = {
            "node_features": node_features,
            "edge_features": edge_features,
            "embedding_dim": embedding_dim,
            "node_hidden": node_hidden,
            "edge_hidden": edge_hidden,
            "blocks": blocks,
        }
        h = node_hidden
        self.encode_hand = mlp([node_features, 64, h])
        self.encode_emb = mlp([embedding_dim, 64, h]) if embedding_dim else None
        node_dim = 2 * h if embedding_dim else h
        inputs = node_features + embedding_dim
        first = edge_features + inputs + 1 + 3 * node_dim + 1
        self.edge_init = mlp([first, 128, edge_hidden])
        self.convs = nn.ModuleList(
            PDNConv(node_dim, node_dim, edge_hidden, hidden_channels=32) for _ in range(blocks)
        )
        self.edge_updates = nn.ModuleList(
            mlp([edge_hidden + 3 * node_dim + 1, 128, edge_hidden]) for _ in range(blocks)
        )
        self.classify = mlp([edge_hidden, 128, 32, 1], last_relu=False)

    @classmethod
    def from_arch(cls, arch: dict[str, Any]) -> EdgeMPNN:
        return cls(**{k: int(v) for k, v in arch.items()})

    def encode(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        if self.encode_emb is None:
            return self.encode_hand(x)
        return torch.cat([self.encode_hand(x), self.encode_emb(emb)], dim=1)

    def forward(
        self,
        x: torch.Tensor,
        emb: torch.Tensor,
        edge_index: torch.Tensor,
        edge_attr: torch.Tensor,
    ) -> torch.Tensor:
        """One logit per edge (E,)."""
        src, dst = edge_index
        raw = torch.cat([x, emb], dim=1) if self.encode_emb is not None else x
        h = self.encode(x, emb)
        raw_pair = _ends(raw, src, dst)[2:]  # |difference| and cosine of the raw inputs
        e = self.edge_init(torch.cat([edge_attr, *raw_pair, *_ends(h, src, dst)], dim=1))
        # messages flow both ways: a cell hears about the frames before and after
        source, target = torch.cat([src, dst]), torch.cat([dst, src])
        for conv, update in zip(self.convs, self.edge_updates, strict=True):
            # the MLP sees every edge twice, as in torch-geometric: a matrix product over
            # E rows can round differently from one over 2E rows
            h = F.relu(conv(h, source, target, conv.edge_weights(torch.cat([e, e]))))
            e = update(torch.cat([e, *_ends(h, src, dst)], dim=1))
        return self.classify(e)[:, 0]
