"""Appearance embedding: a small ResNet (plain torch, 2D or 3D) maps a cell crop to a unit vector.

Trained by metric learning (`training.embedding`) so that the same cell in nearby frames gives
close vectors and different cells distant ones; the GNN takes the vectors as node inputs.
The published method uses a ResNet-18 with a 128-d output; the default here is smaller
(three stages of 16/32/64 channels, 64-d) so tracking runs fast on a CPU.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from inference.cells.crops import cell_crops
from inference.cells.features import CompactLabels
from inference.config import (
    ConfigValueError,
    choice,
    integer,
    items,
    load_model_config,
    section,
    setting,
)
from inference.models.folder import CONFIG_NAME, load_model_folder, load_state_checked

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


def inference_copy(model: ResNet) -> ResNet:
    """A copy of `model` (in eval mode) that computes the same vectors faster on a CPU.

    Each batch norm is folded into the convolution before it and activations are kept
    channels-last, so oneDNN neither runs separate normalisation passes nor reorders every
    tensor (about 40% less time for 100 crops). The vectors agree to rounding (1e-6).
    """
    if model.training:
        raise ValueError("fold batch norms only in eval mode (they use running statistics)")
    fast = copy.deepcopy(model)
    fold = fuse_conv_bn_eval
    fast.stem[0], fast.stem[1] = fold(fast.stem[0], fast.stem[1]), nn.Identity()
    for block in fast.trunk:
        block.conv1, block.bn1 = fold(block.conv1, block.bn1), nn.Identity()
        block.conv2, block.bn2 = fold(block.conv2, block.bn2), nn.Identity()
        if isinstance(block.skip, nn.Sequential):
            block.skip[0], block.skip[1] = fold(block.skip[0], block.skip[1]), nn.Identity()
    return fast.to(memory_format=_channels_last(model.ndim))


def _channels_last(ndim: int) -> torch.memory_format:
    return torch.channels_last if ndim == 2 else torch.channels_last_3d


_SIZES = items(integer(1))


@dataclass(frozen=True)
class ResNetArchitecture:
    """The `architecture` section of an embedding's config.json (recorded by training)."""

    ndim: int = setting(choice(2, 3))
    channels: list[int] = setting(_SIZES)
    blocks: list[int] = setting(_SIZES)
    dim: int = setting(integer(1))

    def __post_init__(self) -> None:
        if not self.channels:
            raise ConfigValueError("channels", self.channels, "a list of integers >= 1")
        if len(self.blocks) != len(self.channels):
            allowed = f"a list of {len(self.channels)} integers >= 1 (one per stage of channels)"
            raise ConfigValueError("blocks", self.blocks, allowed)


@dataclass(frozen=True)
class CropGeometry:
    """The `crop` section: each cell is cut out over `extent` pixels and resized to `size`."""

    extent: list[int] = setting(_SIZES)
    size: list[int] = setting(_SIZES)


@dataclass(frozen=True)
class EmbeddingConfig:
    """An embedding folder's config.json (besides the record keys of `inference.config`)."""

    architecture: ResNetArchitecture = section(ResNetArchitecture, required=True)
    crop: CropGeometry = section(CropGeometry, required=True)

    def __post_init__(self) -> None:
        ndim = self.architecture.ndim
        for key in ("extent", "size"):
            value = getattr(self.crop, key)
            if len(value) != ndim:
                allowed = f"a list of {ndim} integers >= 1 (one per axis of the {ndim}D model)"
                raise ConfigValueError(f"crop.{key}", value, allowed)


@dataclass
class Embedder:
    """A trained ResNet with the crop geometry it was trained on."""

    model: ResNet
    extent: tuple[int, ...]
    size: tuple[int, ...]
    sha256: str
    batch_size: int = 256
    _fast: tuple[tuple[tuple[int, int], ...], ResNet] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    @property
    def ndim(self) -> int:
        return self.model.ndim

    @property
    def dim(self) -> int:
        return self.model.dim

    @classmethod
    def from_config(
        cls, config: dict[str, Any], state: dict | None = None, source: Path | None = None
    ) -> Embedder:
        """Build from a config dict (see `config`), checked (`EmbeddingConfig`; errors name
        `source`); load `state` when given."""
        checked = load_model_config(EmbeddingConfig, config, source)
        arch = checked.architecture
        model = ResNet(arch.ndim, tuple(arch.channels), tuple(arch.blocks), arch.dim)
        if state is not None:
            model.load_state_dict(state)
        model.eval()
        crop = checked.crop
        sha = config.get("weights", {}).get("sha256", "")
        return cls(model, tuple(crop.extent), tuple(crop.size), sha)

    @classmethod
    def from_folder(cls, folder: str | Path) -> Embedder:
        """Load a model folder written by `gnntrack train-embedding`."""
        config, state = load_model_folder(folder, MODEL_KIND)
        embedder = cls.from_config(config, source=Path(folder) / CONFIG_NAME)
        load_state_checked(embedder.model, state, folder)
        return embedder

    def config(self) -> dict[str, Any]:
        """Architecture and crop geometry, as stored in `config.json`."""
        return {
            "architecture": dict(self.model.arch),
            "crop": {"extent": list(self.extent), "size": list(self.size)},
        }

    def _inference_model(self) -> ResNet:
        """`inference_copy` of the model, remade whenever its weights have changed."""
        if self.model.training:
            return self.model
        tensors = [*self.model.parameters(), *self.model.buffers()]
        key = tuple((t._version, t.data_ptr()) for t in tensors)  # in-place updates, moves
        if self._fast is None or self._fast[0] != key:
            self._fast = (key, inference_copy(self.model))
        return self._fast[1]

    @torch.inference_mode()
    def embed_crops(self, crops: np.ndarray) -> np.ndarray:
        """Unit vectors (n, dim) for crops (n, *size)."""
        out = np.zeros((len(crops), self.dim), np.float32)
        model = self._inference_model()
        device = next(model.parameters()).device
        memory_format = _channels_last(self.ndim)
        for i in range(0, len(crops), self.batch_size):
            batch = torch.from_numpy(crops[i : i + self.batch_size])[:, None].to(device)
            batch = batch.contiguous(memory_format=memory_format)
            out[i : i + self.batch_size] = model(batch).cpu().numpy()
        return out

    def embed(
        self,
        image: np.ndarray,
        compact: CompactLabels,
        table: pd.DataFrame,
        value_range: tuple[float, float] | None = None,
    ) -> np.ndarray:
        """Unit vectors (n, dim) of the cells of one frame (rows of `table`); `value_range`
        as `cell_crops` takes it, where `compact` holds only some of the frame's cells."""
        crops = cell_crops(image, compact, table, self.extent, self.size, value_range)
        return self.embed_crops(crops)
