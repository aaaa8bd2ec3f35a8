"""What a sequence looks like: background level, pixel noise and cell signal, from its frames.

Another sequence of a dataset may hold the same cells at a quarter of the contrast, with the
same camera noise: a segmenter that sees only percentile-normalised frames cannot tell. These
estimates need no model and no ground truth, so a run can measure them on the sequence it is
given before it segments (and log them), and a benchmark can shift a sequence's look by a
known amount.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass

import numpy as np

#: Median absolute deviation of a normal distribution, in standard deviations.
_MAD_TO_SD = 0.6744897501960817


@dataclass(frozen=True)
class Look:
    """Grey levels of a sequence: `background` (its mode), `noise` (pixel standard deviation)
    and `signal` (a bright cell's level above the background: the 99.5th percentile)."""

    background: float
    noise: float
    signal: float

    @property
    def snr(self) -> float:
        """Signal over noise: how many noise standard deviations bright cells stand above."""
        return self.signal / self.noise if self.noise > 0 else math.inf

    def as_dict(self) -> dict[str, float]:
        return {**asdict(self), "snr": self.snr}

    def __str__(self) -> str:
        return (
            f"background {self.background:.4g}, noise sd {self.noise:.3g}, "
            f"signal {self.signal:.4g} (signal/noise {self.snr:.1f})"
        )


def pixel_noise(image: np.ndarray) -> float:
    """Standard deviation of the pixel noise, robust to the cells in the frame.

    Differences of neighbouring pixels along the last axis cancel everything smooth (the
    background, the inside of blurred cells) and keep white noise with twice its variance;
    their median absolute value ignores the few large steps at cell borders.
    """
    image = np.asarray(image, dtype=np.float64)
    steps = np.diff(image, axis=-1).ravel()
    if steps.size == 0:
        return 0.0
    # The median alone is coarse on integer grey levels (it can only take a few values);
    # it serves to drop the border steps, and the standard deviation of the rest is the
    # estimate (a cut at 4 sd loses < 0.1% of a normal distribution's spread).
    rough = max(float(np.median(np.abs(steps))) / _MAD_TO_SD, 0.5)
    kept = steps[np.abs(steps) <= 4.0 * rough]
    return float(kept.std() / math.sqrt(2.0)) if kept.size else 0.0


def background_level(image: np.ndarray, noise: float) -> float:
    """The most frequent grey level (the background), from a histogram in noise-sized bins.

    The mode rather than a percentile: it does not move when a frame holds more cells.
    """
    flat = np.asarray(image, dtype=np.float64).ravel()
    lo, hi = np.percentile(flat, [0.5, 99.5])
    if hi <= lo:
        return float(np.median(flat))
    width = max(noise / 2.0, (hi - lo) / 4096.0, 1e-6)
    if np.issubdtype(np.asarray(image).dtype, np.integer):  # whole grey levels per bin
        width = max(1.0, float(round(width)))
        lo, hi = math.floor(lo) - 0.5, math.ceil(hi) + 0.5
    bins = max(int(math.ceil((hi - lo) / width)), 1)
    counts, edges = np.histogram(flat, bins=bins, range=(lo, lo + bins * width))
    if counts.size >= 5:  # a light smoothing over five bins (2.5 noise sd)
        counts = np.convolve(counts, np.ones(5), mode="same")
    peak = int(np.argmax(counts))
    mode = float((edges[peak] + edges[peak + 1]) / 2.0)
    # The bin is coarse (whole grey levels, half a noise sd): refine to the mean of the
    # pixels within one noise sd of it, a window symmetric about the background's peak.
    for _ in range(2):
        near = flat[np.abs(flat - mode) <= max(noise, 0.5)]
        if near.size:
            mode = float(near.mean())
    return mode


def estimate_look(frames: Iterable[np.ndarray], max_pixels: int = 2_000_000) -> Look:
    """The look of a sequence from (a sample of) its frames: median over the frames of the
    per-frame background, noise and signal, so one odd frame does not decide."""
    backgrounds, noises, signals = [], [], []
    for frame in frames:
        frame = np.asarray(frame)
        if frame.ndim == 3:  # a 3D stack: slices spread over its depth
            step = max(1, frame.shape[0] // 8)
            frame = frame[::step]
        if frame.size > max_pixels:  # whole rows, so neighbours stay neighbours
            rows = frame.reshape(-1, frame.shape[-1])
            frame = rows[:: max(1, rows.shape[0] * rows.shape[1] // max_pixels)]
        finite = np.isfinite(frame) if np.issubdtype(frame.dtype, np.floating) else None
        if finite is not None and not finite.all():
            frame = np.where(finite, frame, np.nanmedian(frame))
        noise = pixel_noise(frame)
        background = background_level(frame, noise)
        backgrounds.append(background)
        noises.append(noise)
        signals.append(float(np.percentile(frame, 99.5)) - background)
    if not backgrounds:
        raise ValueError("no frames to estimate the look from")
    return Look(
        background=float(np.median(backgrounds)),
        noise=float(np.median(noises)),
        signal=max(float(np.median(signals)), 0.0),
    )


def cell_level(frames: Iterable[np.ndarray], masks: Iterable[np.ndarray], look: Look) -> float:
    """The cells' typical grey level above the background of `look`: the median of the
    pixels under `masks` (tracking markers or segmentation masks) in `frames`; 0 if none."""
    values = [np.asarray(f)[np.asarray(m) > 0] for f, m in zip(frames, masks, strict=True)]
    inside = np.concatenate([v.ravel() for v in values]) if values else np.array([])
    return float(np.median(inside)) - look.background if inside.size else 0.0


def cell_snr(frames: Iterable[np.ndarray], masks: Iterable[np.ndarray], look: Look) -> float:
    """How many noise sds the cells of `masks` stand above the background of `look`: the
    median of their pixels. Unlike `Look.snr` (the brightest cells), it follows the typical
    cell, which a dim sequence dims and a contrast curve leaves near where it was."""
    if look.noise <= 0:
        return 0.0
    return max(cell_level(frames, masks, look), 0.0) / look.noise
