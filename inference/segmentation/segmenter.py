"""Segmentation of a CTC sequence with a trained `seg_code` model, frame by frame.

This is where files meet the segmenter: frames are read (streamed), normalised, stacked
with their previous frames as temporal context, and the label masks written atomically.
Before the first frame, the segmenter is adapted to the sequence's look
(`inference.segmentation.adapt`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from inference.config import load_model_config
from inference.errors import CTCError
from inference.io import FrameSequence, atomic_output_dir, frame_name, write_mask
from inference.models.folder import CONFIG_NAME, load_model_folder, load_state_checked
from inference.progress import progress
from inference.segmentation.adapt import adapt_to_sequence, log_look, spread_frames
from inference.segmentation.segmenter_config import InferenceParams, SegmentationConfig
from seg_code.contrast import ContrastRule
from seg_code.denoise import DenoiseRule, smooth
from seg_code.normalize import percentile_normalize
from seg_code.postprocess import PostprocessParams, labels_from_probabilities
from seg_code.predict import predict_probabilities
from seg_code.resize import resample, scaled_shape
from seg_code.unet import UNet

MODEL_KIND = "segmentation"


@dataclass
class Segmenter:
    """A trained U-Net with everything needed to apply it the way it was trained."""

    model: UNet
    context_frames: int
    normalization: dict[str, float]
    postprocess: PostprocessParams
    tile: tuple[int, ...]
    margin: tuple[int, ...]
    batch_size: int = InferenceParams.batch_size
    scale: float = InferenceParams.scale
    precision: str = InferenceParams.precision  # bfloat16 where the hardware runs it natively
    flip_average: bool = InferenceParams.flip_average  # average over the YX mirror images
    cell_diameter: float | None = None  # median cell diameter (px) of the training frames
    adapt_scale: bool = True  # rescale to that diameter when a sequence's cells differ
    denoise: DenoiseRule = DenoiseRule()  # smoothing by how much noisier a sequence is
    smoothing: float = 0.0  # Gaussian sigma (px on the network's grid) before normalising
    contrast: ContrastRule = ContrastRule()  # a cap on the range, from the typical cell
    max_range: float | None = None  # the cap a run set (grey levels); None: the percentiles'

    @classmethod
    def from_folder(cls, folder: str | Path, overrides: dict[str, Any] | None = None) -> Segmenter:
        """Load a model folder (its config checked, see `SegmentationConfig`); `overrides`
        replace post-processing thresholds."""
        raw, state = load_model_folder(folder, MODEL_KIND)
        config = load_model_config(SegmentationConfig, raw, Path(folder) / CONFIG_NAME)
        model = UNet(**asdict(config.architecture))
        run = config.inference
        segmenter = cls(
            model=model,
            context_frames=config.context_frames,
            normalization=asdict(config.normalization),
            postprocess=config.postprocess,
            tile=config.tile,
            margin=config.margin,
            batch_size=run.batch_size,
            scale=run.scale,
            precision=run.precision,
            flip_average=run.flip_average,
            cell_diameter=run.cell_diameter,
            denoise=config.denoise,
            contrast=config.contrast,
        )
        load_state_checked(model, state, folder)
        model.eval()
        if overrides:
            try:
                segmenter.postprocess = replace(config.postprocess, **overrides)
            except TypeError as exc:
                raise CTCError(f"unknown post-processing override ({exc})", folder) from exc
        return segmenter

    @property
    def ndim(self) -> int:
        return self.model.ndim

    def normalize(self, frame: np.ndarray) -> np.ndarray:
        """A frame as the network sees it: smoothed (`smoothing`, for a noisy sequence),
        percentile-normalised (the range capped at `max_range`), on the network's grid."""
        if self.smoothing > 0:  # the sigma is kept on the network's grid, whatever the scale
            frame = smooth(frame, self.smoothing / self.scale)
        image = percentile_normalize(frame, **self.normalization, max_range=self.max_range)
        return resample(image[None], scaled_shape(image.shape, self.scale))[0]

    def probabilities(self, context: list[np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
        """P(background), P(cell), P(edge), P(centre) of the last of `context` (from
        `normalize`), on the frame grid `shape`."""
        x = np.stack(context)
        p = self._predict(x)
        if self.flip_average:  # mirror images in Y, X and both, each mirrored back
            for axes in ((-1,), (-2,), (-2, -1)):
                p += np.flip(self._predict(np.flip(x, axes)), axes)
            p /= 4
        return resample(p, shape)

    def _predict(self, x: np.ndarray) -> np.ndarray:
        """The network's probabilities of one (channels, *spatial) input."""
        return predict_probabilities(
            self.model,
            np.ascontiguousarray(x),
            self.tile,
            self.margin,
            self.batch_size,
            self.precision,
        )

    def labels(self, context: list[np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
        """Instance labels on the frame grid `shape`."""
        p = self.probabilities(context, shape)
        return labels_from_probabilities(p[1], p[2], p[3], self.postprocess)


def iter_segmentation(images: FrameSequence, segmenter: Segmenter) -> Iterator[np.ndarray]:
    """Label masks of every frame, in order; only `context_frames + 1` frames in memory."""
    if images.ndim != segmenter.ndim:
        raise CTCError(
            f"the segmentation model is {segmenter.ndim}D but the frames are "
            f"{images.ndim}D {images.shape}",
            images.folder,
        )
    if isinstance(images, FrameSequence) and len(images):
        read: dict[int, np.ndarray] = {}  # the sampled frames, read once for all
        look = log_look(images, read)
        adapt_to_sequence(spread_frames(images, 3, read), look, segmenter, images.folder.name)
    window: deque[np.ndarray] = deque(maxlen=segmenter.context_frames + 1)
    for frame in images:
        current = segmenter.normalize(frame)
        if not window:  # the first frame stands in for the missing past
            window.extend([current] * segmenter.context_frames)
        window.append(current)
        yield segmenter.labels(list(window), frame.shape)


def segment_sequence(
    images: FrameSequence, segmenter: Segmenter, out_dir: str | Path, *, overwrite: bool = False
) -> Path:
    """Write `mask###.tif` for every frame of `images` into `out_dir` (atomically)."""
    n = len(images)
    with atomic_output_dir(out_dir, overwrite=overwrite) as tmp:
        masks = iter_segmentation(images, segmenter)
        for t, labels in enumerate(progress(masks, n, "segment")):
            write_mask(tmp / frame_name("mask", t, n), labels)
    return Path(out_dir)
