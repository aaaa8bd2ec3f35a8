"""The config.json of a segmentation model folder, section by section (see `inference.config`).

`architecture` (the U-Net), `context_frames`, `normalization`, `postprocess`
(`seg_code.postprocess.PostprocessParams`), `denoise` (`seg_code.denoise.DenoiseRule`: how
much a noisier sequence is smoothed), `contrast` (`seg_code.contrast.ContrastRule`: how wide
a range a frame keeps against its typical cell) and `inference` (tiling, resolution,
arithmetic).
Each default lives here once; `inference.segmentation.segmenter.Segmenter` takes its own from these.
"""

from __future__ import annotations

from dataclasses import dataclass

from inference.config import (
    ConfigValueError,
    choice,
    flag,
    integer,
    items,
    number,
    optional,
    section,
    setting,
)
from seg_code.contrast import ContrastRule
from seg_code.denoise import DenoiseRule
from seg_code.postprocess import PostprocessParams
from seg_code.predict import PRECISIONS


@dataclass(frozen=True)
class UNetArchitecture:
    """The `architecture` section: what `seg_code.unet.UNet` is built with."""

    ndim: int = setting(choice(2, 3))
    in_channels: int = setting(integer(1))
    base_channels: int = setting(integer(1))
    depth: int = setting(integer(1))
    pool_z: list[bool] | None = setting(optional(items(flag())), None)  # 3D: pool Z per level

    def __post_init__(self) -> None:
        if self.pool_z is not None and len(self.pool_z) != self.depth:
            allowed = f"null or a list of {self.depth} true/false values (one per level)"
            raise ConfigValueError("pool_z", self.pool_z, allowed)


@dataclass(frozen=True)
class NormalizationParams:
    """The `normalization` section: percentiles mapped to 0 and 1, then a gamma."""

    low: float = setting(number(0, 100), 1.0)
    high: float = setting(number(0, 100), 99.8)
    gamma: float = setting(number(above=0), 1.0)

    def __post_init__(self) -> None:
        if self.high <= self.low:
            raise ConfigValueError("high", self.high, f"a number above low ({self.low:g})")


@dataclass(frozen=True)
class InferenceParams:
    """The `inference` section: how frames go through the network."""

    tile: list[int] | None = setting(optional(items(integer(1))), None)  # None: 512 per axis
    margin: list[int] | None = setting(optional(items(integer(0))), None)  # None: 32 per axis
    batch_size: int = setting(integer(1), 1)
    scale: float = setting(number(above=0), 1.0)  # network resolution / frame resolution
    precision: str = setting(choice(*PRECISIONS), "auto")  # bfloat16 where native
    flip_average: bool = setting(flag(), False)  # average over the YX mirror images (4x time)
    # median cell diameter (px) of the training frames; None: the scale is never adapted
    cell_diameter: float | None = setting(optional(number(above=0)), None)


DEFAULT_TILE, DEFAULT_MARGIN = 512, 32


@dataclass(frozen=True)
class SegmentationConfig:
    """A segmentation folder's config.json (besides the record keys of `inference.config`)."""

    architecture: UNetArchitecture = section(UNetArchitecture, required=True)
    context_frames: int = setting(integer(0))
    normalization: NormalizationParams = section(NormalizationParams)
    postprocess: PostprocessParams = section(PostprocessParams)
    denoise: DenoiseRule = section(DenoiseRule)
    contrast: ContrastRule = section(ContrastRule)
    inference: InferenceParams = section(InferenceParams)

    def __post_init__(self) -> None:
        ndim, channels = self.architecture.ndim, self.context_frames + 1
        if self.architecture.in_channels != channels:
            allowed = f"context_frames + 1 = {channels} (the frame and its context)"
            raise ConfigValueError(
                "architecture.in_channels", self.architecture.in_channels, allowed
            )
        for key in ("tile", "margin"):
            value = getattr(self.inference, key)
            if value is not None and len(value) != ndim:
                allowed = f"a list of {ndim} integers (one per axis of the {ndim}D model)"
                raise ConfigValueError(f"inference.{key}", value, allowed)

    @property
    def tile(self) -> tuple[int, ...]:
        return tuple(self.inference.tile or (DEFAULT_TILE,) * self.architecture.ndim)

    @property
    def margin(self) -> tuple[int, ...]:
        return tuple(self.inference.margin or (DEFAULT_MARGIN,) * self.architecture.ndim)
