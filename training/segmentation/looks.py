"""Look shifts: a frame made to look like another sequence of its dataset, by a known amount.

Other sequences of a dataset differ from the training one in how far the cells stand above
the camera noise, in gain and offset, contrast curve, focus, brightness and scale. Each shift
here maps a frame (and, for a rescale, its masks) to such a look with the cells where they
were, so the ground truth still holds. The benchmark scores models on them
(`benchmarks/robustness.py`); training can draw them as augmentation.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from seg_code.look import Look, pixel_noise


def _to_dtype(image: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Round and clip to the frame's grey levels (a camera saturates; it never wraps)."""
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.rint(image), info.min, info.max).astype(dtype)
    return image.astype(dtype)


def compress_signal(
    image: np.ndarray, look: Look, cell_level: float, snr: float, rng: np.random.Generator
) -> np.ndarray:
    """Cells only `snr` noise sds above the background, at the frame's own noise level.

    The signal is scaled toward the background by a = snr * noise / cell_level (where
    `cell_level` is the cells' typical level above the background) and noise is added so
    that the total noise stays what it was: the dim-sequence look (SIM+ at 1-2 sds).
    A frame already at or below `snr` is returned as it is.
    """
    if cell_level <= 0 or snr * look.noise >= cell_level:
        return image.copy()
    a = snr * look.noise / cell_level
    pressed = _pressed(image.astype(np.float64), look.background, look.noise, a, rng)
    return _to_dtype(pressed, image.dtype)


def _pressed(
    image: np.ndarray, background: float, noise: float, a: float, rng: np.random.Generator
) -> np.ndarray:
    """The signal above `background` scaled by `a` (<= 1), with noise added so that the
    total noise stays `noise`: the same cells, dimmer, behind the same camera."""
    out = background + a * (image - background)
    out += rng.normal(0.0, noise * math.sqrt(max(1.0 - a * a, 0.0)), image.shape)
    return out


def _background(image: np.ndarray, labels: np.ndarray) -> float:
    """The median of the current (last) frame's pixels outside every cell (0 if none)."""
    outside = labels == 0
    return float(np.median(image[-1][outside])) if outside.any() else 0.0


def gain_offset(image: np.ndarray, gain: float, offset: float) -> np.ndarray:
    """Another camera gain and baseline: x -> gain * x + offset (clipped to the grey levels)."""
    return _to_dtype(gain * image.astype(np.float64) + offset, image.dtype)


def gamma_curve(image: np.ndarray, gamma: float) -> np.ndarray:
    """Another contrast curve: the frame's range raised to `gamma` (< 1 lifts dim cells)."""
    x = image.astype(np.float64)
    lo, hi = float(x.min()), float(x.max())
    if hi <= lo:
        return image.copy()
    return _to_dtype(lo + (hi - lo) * ((x - lo) / (hi - lo)) ** gamma, image.dtype)


def blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Out of focus: a Gaussian blur of `sigma` px in YX."""
    sigmas = (0.0,) * (image.ndim - 2) + (sigma, sigma)
    return _to_dtype(ndi.gaussian_filter(image.astype(np.float64), sigmas), image.dtype)


def brighten(image: np.ndarray, look: Look, factor: float, saturate: float = 99.0) -> np.ndarray:
    """Brighter, more contrasted cells (the signal above the background times `factor`)
    whose brightest pixels saturate: everything over the `saturate` percentile of the
    brightened frame is clipped to it, as a camera at full range does."""
    x = look.background + factor * (image.astype(np.float64) - look.background)
    top = float(np.percentile(x, saturate))
    return _to_dtype(np.minimum(x, top), image.dtype)


def rescale(image: np.ndarray, factor: float) -> np.ndarray:
    """The frame at `factor` times its size in YX (bigger or smaller cells), linear."""
    zoom = (1.0,) * (image.ndim - 2) + (factor, factor)
    return _to_dtype(ndi.zoom(image.astype(np.float64), zoom, order=1), image.dtype)


def rescale_labels(labels: np.ndarray, factor: float, shape: tuple[int, ...]) -> np.ndarray:
    """Masks on the grid of `rescale(frame, factor)` (nearest label), of shape `shape`."""
    zoom = [target / source for target, source in zip(shape, labels.shape, strict=True)]
    return ndi.zoom(labels, zoom, order=0)


@dataclass(frozen=True)
class Shift:
    """One look shift: a family (the plot's panel), a level (its x axis) and what it does.

    `apply(image, look, cell_level, rng)` returns the shifted frame; `scale` is the YX size
    factor (the masks must follow), 1 for every shift but a rescale.
    """

    family: str
    level: float
    label: str
    apply: Callable[[np.ndarray, Look, float, np.random.Generator], np.ndarray]
    scale: float = 1.0


def shift_windows(
    windows: list[list[np.ndarray]],
    shift: Shift,
    look: Look,
    cell_level: float,
    seed: tuple[int, ...],
) -> list[list[np.ndarray]]:
    """Every frame of `windows` (frames with their context) shifted alike, each frame's
    added noise seeded by `seed` and its place (window, frame)."""
    return [
        [
            shift.apply(f, look, cell_level, np.random.default_rng((*seed, i, j)))
            for j, f in enumerate(window)
        ]
        for i, window in enumerate(windows)
    ]


def standard_shifts() -> list[Shift]:
    """The benchmark's shifts: the looks measured on unseen sequences and beyond them."""
    shifts = [Shift("none", 0.0, "unshifted", lambda im, lk, c, r: im.copy())]
    for snr in (8.0, 4.0, 2.0, 1.5, 1.0):
        shifts.append(
            Shift(
                "signal/noise",
                snr,
                f"signal/noise {snr:g}",
                lambda im, lk, c, r, s=snr: compress_signal(im, lk, c, s, r),
            )
        )
    for gain in (0.5, 2.0):
        shifts.append(
            Shift(
                "gain/offset",
                gain,
                f"gain {gain:g}",
                lambda im, lk, c, r, g=gain: gain_offset(im, g, 0.0),
            )
        )
    shifts.append(  # the baseline raised by as much as the bright cells stand above it
        Shift(
            "gain/offset",
            1.0,
            "offset +signal",
            lambda im, lk, c, r: gain_offset(im, 1.0, lk.signal),
        )
    )
    for gamma in (0.5, 2.0):
        shifts.append(
            Shift(
                "gamma", gamma, f"gamma {gamma:g}", lambda im, lk, c, r, g=gamma: gamma_curve(im, g)
            )
        )
    for sigma in (1.5, 3.0):
        shifts.append(
            Shift(
                "blur", sigma, f"blur sigma {sigma:g} px", lambda im, lk, c, r, s=sigma: blur(im, s)
            )
        )
    for factor in (3.0,):
        shifts.append(
            Shift(
                "brighter",
                factor,
                f"cells x{factor:g}, saturated",
                lambda im, lk, c, r, f=factor: brighten(im, lk, f),
            )
        )
    for factor in (0.75, 1.33):
        shifts.append(
            Shift(
                "rescale",
                factor,
                f"rescale x{factor:g}",
                lambda im, lk, c, r, f=factor: rescale(im, f),
                scale=factor,
            )
        )
    return shifts


def _renormalise(image: np.ndarray, low: float = 1.0, high: float = 99.8) -> np.ndarray:
    """Percentiles of the current (last) frame mapped to 0 and 1 in every channel, as the
    run normalises each frame: a dimmer look is seen through the same lens."""
    lo, hi = np.percentile(image[-1], [low, high])
    return ((image - lo) / (hi - lo if hi > lo else 1.0)).astype(np.float32)


def dim_some_cells(
    image: np.ndarray, labels: np.ndarray, rng: np.random.Generator, share=(0.2, 0.7), by=(0.1, 0.6)
) -> np.ndarray:
    """A random `share` of the cells at a fraction `by` of their signal above the background
    (a smooth map, so their blurred rims follow): dim cells among bright ones, the look that
    percentile normalisation hides most."""
    ids = np.unique(labels)
    ids = ids[ids > 0]
    if not len(ids):
        return image
    chosen = ids[rng.random(len(ids)) < rng.uniform(*share)]
    if not len(chosen):
        return image
    region = ndi.gaussian_filter(np.isin(labels, chosen).astype(np.float32), 2.0)
    factor = 1.0 - (1.0 - rng.uniform(*by)) * np.clip(region * 2.0, 0.0, 1.0)
    background = _background(image, labels)
    return (background + factor * (image - background)).astype(np.float32)


def dim_all_cells(image: np.ndarray, labels: np.ndarray, a: float, rng: np.random.Generator):
    """Every channel's signal at a fraction `a` of its height above the background, at the
    frame's own noise level (see `compress_signal`)."""
    pressed = _pressed(image, _background(image, labels), pixel_noise(image[-1]), a, rng)
    return pressed.astype(np.float32)


#: `augment_look`'s chances of dimming some cells and of pressing the whole signal
LOOK_CHANCES = (0.4, 0.5)


def augment_look(
    image: np.ndarray,
    labels: np.ndarray,
    rng: np.random.Generator,
    p_dim: float = LOOK_CHANCES[0],
    p_compress: float = LOOK_CHANCES[1],
) -> np.ndarray:
    """A training patch (channels, *spatial; normalised frames) in another sequence's look:
    some cells dimmed, the whole signal pressed toward the background down to ~1 noise sd,
    then normalised again like a frame at run time."""
    changed = False
    if rng.random() < p_dim:
        image, changed = dim_some_cells(image, labels, rng), True
    if rng.random() < p_compress:
        a = float(np.exp(rng.uniform(np.log(0.08), 0.0)))  # log-uniform: 1/12 .. 1
        image, changed = dim_all_cells(image, labels, a, rng), True
    return _renormalise(image) if changed else image


def validation_looks(
    image: np.ndarray, labels: np.ndarray, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Fixed look shifts of a validation frame (normalised channels), for choosing the
    checkpoint and thresholds on other looks as well as on the training sequence's own:
    cells at ~2 noise sds, half the cells at a quarter of their signal, a contrast curve
    (gamma 2) that leaves dim cells dimmer."""
    cells = labels > 0
    background = _background(image, labels)
    level = float(np.median(image[-1][cells])) - background if cells.any() else 0.0
    noise = pixel_noise(image[-1])
    out = {}
    if level > 2.0 * noise > 0:
        out["signal/noise 2"] = _renormalise(dim_all_cells(image, labels, 2.0 * noise / level, rng))
    out["half the cells dim"] = _renormalise(
        dim_some_cells(image, labels, rng, share=(0.5, 0.5), by=(0.25, 0.25))
    )
    lifted = np.clip(image - background, 0.0, None)
    out["gamma 2"] = _renormalise(background + lifted**2 / max(float(lifted.max()), 1e-6))
    return out
