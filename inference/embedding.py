"""Appearance embedding: a small ResNet (plain torch, 2D or 3D) maps a cell crop to a unit vector.

Trained by metric learning (`training.embedding`) so that the same cell in nearby frames gives
close vectors and different cells distant ones; the GNN takes the vectors as node inputs.
The published method uses a ResNet-18 with a 128-d output; the default here is smaller
(three stages of 16/32/64 channels, 64-d) so tracking runs fast on a CPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from inference.crops import cell_crops
from inference.errors import CTCError
from inference.features import CompactLabels
from inference.model_folder import load_model_folder, load_state_checked

MODEL_KIND = "embedding"


def _conv(ndim: int) -> type[nn.Module]:
    return nn.Conv2d if ndim == 2 else nn.Conv3d


def _norm(ndim: int, channels: int) -> nn.Module:
    return nn.BatchNorm2d(channels) if ndim == 2 else nn.BatchNorm3d(channels)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and a residual connection (ResNet-18's block)."""

    def __init__(self, ndim: int, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        conv = _conv(ndim)
        self.conv1 = conv(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = _norm(ndim, cout)
        self.conv2 = conv(cout, cout, 3, padding=1, bias=False)
        self.bn2 = _norm(ndim, cout)
        self.skip: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.skip = nn.Sequential(
                conv(cin, cout, 1, stride=stride, bias=False), _norm(ndim, cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + self.skip(x))


class ResNet(nn.Module):
    """Stem (stride 2), stages of residual blocks (stride 2 from the second), pooling, head.

    The output is L2-normalised: cosine similarity is the dot product.
    """

    def __init__(
        self,
        ndim: int = 2,
        channels: tuple[int, ...] = (16, 32, 64),
        blocks: tuple[int, ...] = (1, 1, 1),
        dim: int = 64,
    ) -> None:
        super().__init__()
        if ndim not in (2, 3):
            raise ValueError(f"ndim must be 2 or 3, got {ndim}")
        self.ndim, self.dim = ndim, dim
        self.arch = {"ndim": ndim, "channels": list(channels), "blocks": list(blocks), "dim": dim}
        self.stem = nn.Sequential(
            _conv(ndim)(1, channels[0], 3, stride=2, padding=1, bias=False),
            _norm(ndim, channels[0]),
            nn.ReLU(inplace=True),
        )
        layers: list[nn.Module] = []
        cin = channels[0]
        for i, (cout, count) in enumerate(zip(channels, blocks, strict=True)):
            for j in range(count):
                layers.append(BasicBlock(ndim, cin, cout, 2 if i > 0 and j == 0 else 1))
                cin = cout
        self.trunk = nn.Sequential(*layers)
        self.head = nn.Linear(cin, dim)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled trunk output (before the head)."""
        y = self.trunk(self.stem(x))
        return y.flatten(2).mean(dim=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.head(self.features(x)), dim=1)


@dataclass
class Embedder:
    """A trained ResNet with the crop geometry it was trained on."""

    model: ResNet
    extent: tuple[int, ...]
    size: tuple[int, ...]
    sha256: str
    batch_size: int = 256

    @property
    def ndim(self) -> int:
        return self.model.ndim

    @property
    def dim(self) -> int:
        return self.model.dim

    @classmethod
    def from_config(cls, config: dict[str, Any], state: dict | None = None) -> Embedder:
        """Build from a config dict (see `config`); load `state` when given."""
        arch = config["architecture"]
        model = ResNet(
            ndim=int(arch["ndim"]),
            channels=tuple(int(c) for c in arch["channels"]),
            blocks=tuple(int(b) for b in arch["blocks"]),
            dim=int(arch["dim"]),
        )
        if state is not None:
            model.load_state_dict(state)
        model.eval()
        crop = config["crop"]
        sha = config.get("weights", {}).get("sha256", "")
        return cls(model, tuple(crop["extent"]), tuple(crop["size"]), sha)

    @classmethod
    def from_folder(cls, folder: str | Path) -> Embedder:
        """Load a model folder written by `gnntrack train-embedding`."""
        config, state = load_model_folder(folder, MODEL_KIND)
        try:
            embedder = cls.from_config(config)
        except (KeyError, TypeError, ValueError) as exc:
            raise CTCError(f"invalid embedding config ({exc})", folder) from exc
        load_state_checked(embedder.model, state, folder)
        return embedder

    def config(self) -> dict[str, Any]:
        """Architecture and crop geometry, as stored in `config.json`."""
        return {
            "architecture": dict(self.model.arch),
            "crop": {"extent": list(self.extent), "size": list(self.size)},
        }

    @torch.no_grad()
    def embed_crops(self, crops: np.ndarray) -> np.ndarray:
        """Unit vectors (n, dim) for crops (n, *size)."""
        out = np.zeros((len(crops), self.dim), np.float32)
        device = next(self.model.parameters()).device
        for i in range(0, len(crops), self.batch_size):
            batch = torch.from_numpy(crops[i : i + self.batch_size])[:, None].to(device)
            out[i : i + self.batch_size] = self.model(batch).cpu().numpy()
        return out

    def embed(self, image: np.ndarray, compact: CompactLabels, table: pd.DataFrame) -> np.ndarray:
        """Unit vectors (n, dim) of the cells of one frame (rows of `table`)."""
        return self.embed_crops(cell_crops(image, compact, table, self.extent, self.size))
