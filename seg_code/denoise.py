"""Smoothing for sequences noisier than the one a segmenter learned on.

A segmenter trained where cells stand 11 noise sds above the background cuts them into
pieces, or misses the faint ones, where they stand 4 above: it never saw that much noise
relative to the signal. The noise can be brought back toward what it saw by a Gaussian
smoothing of the frame before normalisation. How much smoothing helps a given model at a
given loss of signal is measured once on its validation frames (a `DenoiseRule`, chosen by
`training.segmentation.denoise_calibration`); a run measures how far its sequence's cells
stand above the noise (`seg_code.look.cell_snr`, on a few frames segmented as they are)
and smooths by the rule.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from inference.config import ConfigValueError, items, number, optional, setting


@dataclass(frozen=True)
class DenoiseRule:
    """Smoothing by how much noisier a sequence is than the model's own.

    `snr` is how many noise sds the cells of the model's own frames stand above their
    background (`seg_code.look.cell_snr` under the model's own masks); `ratios`
    (increasing, each above 1) are how many times lower a sequence's is, and
    `sigmas` the Gaussian sigma (px on the network's grid) that served the model best there.
    Between ratios the sigma is interpolated in log ratio, from 0 at ratio 1; past the
    last ratio the last sigma holds.
    """

    snr: float | None = setting(optional(number(above=0)), None)
    ratios: list[float] = setting(items(number(above=1)), factory=list)
    sigmas: list[float] = setting(items(number(0)), factory=list)

    def __post_init__(self) -> None:
        if len(self.ratios) != len(self.sigmas):
            allowed = f"a list of {len(self.ratios)} sigmas (one per ratio)"
            raise ConfigValueError("sigmas", list(self.sigmas), allowed)
        if list(self.ratios) != sorted(set(self.ratios)):
            raise ConfigValueError("ratios", list(self.ratios), "increasing ratios")

    def to_dict(self) -> dict:
        return {"snr": self.snr, "ratios": list(self.ratios), "sigmas": list(self.sigmas)}

    @property
    def active(self) -> bool:
        """Whether the rule ever smooths."""
        return self.snr is not None and any(s > 0 for s in self.sigmas)

    def sigma(self, snr: float) -> float:
        """Sigma (network px) for a sequence whose cells stand `snr` noise sds above its
        background; 0 where it is no noisier than the model's own frames, and where no
        cell was found to measure (`snr` 0): smoothing then has nothing to recover."""
        if not self.active or not math.isfinite(snr) or snr <= 0:
            return 0.0
        ratio = self.snr / snr
        if ratio <= 1:
            return 0.0
        x = np.log([1.0, *self.ratios])
        return float(np.interp(math.log(ratio), x, [0.0, *self.sigmas]))


def smooth(frame: np.ndarray, sigma: float | Sequence[float]) -> np.ndarray:
    """`frame` (float32) smoothed by a Gaussian of `sigma` px in Y and X (a 3D stack's
    slices each on their own: Z is often sampled far more coarsely)."""
    image = np.asarray(frame, dtype=np.float32)
    sigmas = np.broadcast_to(np.asarray(sigma, dtype=float), (2,))
    if not np.any(sigmas > 0):
        return image
    full = (0.0,) * (image.ndim - 2) + tuple(float(s) for s in sigmas)
    return ndi.gaussian_filter(image, full, mode="reflect")
