"""EdgeMPNN: the published edge-oriented message-passing network, in torch-geometric.

Nodes (cells) are encoded from hand-made features and the appearance vector; each candidate
edge starts from its geometry, the |difference| and cosine similarity of its ends' inputs and
encodings. Blocks alternate a node update (PDN convolution: a small MLP turns each edge vector
into a sigmoid weight of a GCN-normalised neighbour sum, over both edge directions so a cell
hears about the frames before and after) and an edge update from the edge and its two ends.
A classifier turns the final edge vector into one logit: "the target continues the source
cell" (same track, or a daughter of a dividing source).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.nn import PDNConv


def mlp(sizes: list[int], last_relu: bool = True) -> nn.Sequential:
    """Linear layers of `sizes` with ReLU between (and after the last with `last_relu`)."""
    layers: list[nn.Module] = []
    for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if k < len(sizes) - 2 or last_relu:
            layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def _pair(a: torch.Tensor, b: torch.Tensor) -> list[torch.Tensor]:
    """|a - b| and cosine similarity (one column) of row-aligned vectors."""
    return [(a - b).abs(), F.cosine_similarity(a, b, dim=1, eps=1e-6)[:, None]]


class EdgeMPNN(nn.Module):
    """Edge classifier over a tracking graph (`inference.graph.WindowGraph`)."""

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
        e = self.edge_init(
            torch.cat(
                [edge_attr, *_pair(raw[src], raw[dst]), h[src], h[dst], *_pair(h[src], h[dst])],
                dim=1,
            )
        )
        both = torch.cat([edge_index, edge_index.flip(0)], dim=1)
        for conv, update in zip(self.convs, self.edge_updates, strict=True):
            h = F.relu(conv(h, both, torch.cat([e, e], dim=0)))
            e = update(torch.cat([e, h[src], h[dst], *_pair(h[src], h[dst])], dim=1))
        return self.classify(e)[:, 0]
