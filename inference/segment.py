"""Segmentation of a CTC sequence with a trained `seg_code` model, frame by frame.

This is where files meet the segmenter: frames are read (streamed), normalised, stacked
with their previous frames as temporal context, and the label masks written atomically.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import click
import numpy as np

from inference.errors import CTCError
from inference.io import FrameSequence, atomic_output_dir, frame_name, write_mask
from inference.model_folder import load_model_folder, load_state_checked
from inference.progress import progress
from seg_code.look import Look, estimate_look
from seg_code.normalize import percentile_normalize
from seg_code.postprocess import PostprocessParams, labels_from_probabilities
from seg_code.predict import predict_probabilities
from seg_code.resize import resample, scaled_shape
from seg_code.unet import UNet

MODEL_KIND = "segmentation"
#: Below this signal/noise (bright cells over the pixel noise) a run warns that dim cells
#: may be missed: the look-shift benchmark loses detections past it.
LOW_SIGNAL = 3.0


@dataclass
class Segmenter:
    """A trained U-Net with everything needed to apply it the way it was trained."""

    model: UNet
    context_frames: int
    normalization: dict[str, float]
    postprocess: PostprocessParams
    tile: tuple[int, ...]
    margin: tuple[int, ...]
    batch_size: int = 1
    scale: float = 1.0
    precision: str = "auto"  # bfloat16 where the hardware runs it natively
    flip_average: bool = False  # average the network over the YX mirror images (4x time)

    @classmethod
    def from_folder(cls, folder: str | Path, overrides: dict[str, Any] | None = None) -> Segmenter:
        """Load a model folder; `overrides` replace post-processing thresholds."""
        config, state = load_model_folder(folder, MODEL_KIND)
        try:
            arch = config["architecture"]
            model = UNet(**arch)
            post = PostprocessParams.from_dict(config.get("postprocess", {}))
            inference = config.get("inference", {})
            segmenter = cls(
                model=model,
                context_frames=int(config["context_frames"]),
                normalization=dict(config.get("normalization", {})),
                postprocess=post,
                tile=tuple(inference.get("tile", (512,) * arch["ndim"])),
                margin=tuple(inference.get("margin", (32,) * arch["ndim"])),
                batch_size=int(inference.get("batch_size", 1)),
                scale=float(inference.get("scale", 1.0)),
                precision=str(inference.get("precision", "auto")),
                flip_average=bool(inference.get("flip_average", False)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CTCError(f"invalid segmentation config ({exc})", folder) from exc
        load_state_checked(model, state, folder)
        model.eval()
        if overrides:
            try:
                segmenter.postprocess = replace(post, **overrides)
            except TypeError as exc:
                raise CTCError(f"unknown post-processing override ({exc})", folder) from exc
        return segmenter

    @property
    def ndim(self) -> int:
        return self.model.ndim

    def normalize(self, frame: np.ndarray) -> np.ndarray:
        """A frame as the network sees it: percentile-normalised, on the network's grid."""
        image = percentile_normalize(frame, **self.normalization)
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


def sequence_look(images: FrameSequence, samples: int = 5) -> Look:
    """The look of a sequence (background, noise, signal) from `samples` frames spread over
    it, measured before segmenting so the run's log says what the segmenter was given."""
    n = len(images)
    picks = sorted({round(i * (n - 1) / max(samples - 1, 1)) for i in range(min(samples, n))})
    return estimate_look(images.read(t) for t in picks)


def log_look(images: FrameSequence) -> Look:
    """Estimate the sequence's look and say it on stderr (one line; a second one warns when
    the cells stand so little above the noise that dim ones may be missed)."""
    look = sequence_look(images)
    click.echo(f"look of {images.folder.name}: {look}", err=True)
    if look.snr < LOW_SIGNAL:
        click.echo(
            f"warning: bright cells stand only {look.snr:.1f} noise sds above the background "
            f"of {images.folder.name}: dim cells may be missed",
            err=True,
        )
    return look


def iter_segmentation(images: FrameSequence, segmenter: Segmenter) -> Iterator[np.ndarray]:
    """Label masks of every frame, in order; only `context_frames + 1` frames in memory."""
    if images.ndim != segmenter.ndim:
        raise CTCError(
            f"the segmentation model is {segmenter.ndim}D but the frames are "
            f"{images.ndim}D {images.shape}",
            images.folder,
        )
    if isinstance(images, FrameSequence) and len(images):
        log_look(images)
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
