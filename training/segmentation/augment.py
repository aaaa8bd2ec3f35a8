"""Augmentation that makes the segmenter robust to another sequence's look.

The CTC judges on sequences nobody trained on: other intensity offsets, contrast, noise,
blur, density and cell size. Each patch gets a random zoom (cell size), dihedral flips,
and a random intensity transform (contrast, offset, gamma, blur, noise).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from training.segmentation.looks import LOOK_CHANCES, augment_look


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the random transforms (each drawn uniformly)."""

    patch: tuple[int, ...]
    zoom: tuple[float, float] = (0.7, 1.4)
    contrast: tuple[float, float] = (0.6, 1.6)
    offset: tuple[float, float] = (-0.2, 0.2)
    gamma: tuple[float, float] = (0.7, 1.5)
    noise: tuple[float, float] = (0.0, 0.08)
    blur: tuple[float, float] = (0.0, 1.5)
    foreground_bias: float = 0.8  # chance that a patch is centred on a cell
    looks: bool = False  # also other sequences' looks: dim cells, low signal/noise (looks.py)
    looks_rate: float = 1.0  # the chances of each look (augment_look's defaults) times this


def _crop_box(shape, size, labels, rng, bias) -> tuple[slice, ...]:
    centre = None
    if rng.random() < bias:
        fg = np.flatnonzero(labels.ravel())
        if fg.size:
            centre = np.unravel_index(fg[rng.integers(fg.size)], shape)
    box = []
    for axis, (s, n) in enumerate(zip(shape, size, strict=True)):
        if n >= s:
            box.append(slice(0, s))
            continue
        if centre is None:
            start = int(rng.integers(0, s - n + 1))
        else:
            start = int(
                np.clip(centre[axis] - n // 2 + rng.integers(-n // 4, n // 4 + 1), 0, s - n)
            )
        box.append(slice(start, start + n))
    return tuple(box)


def _fit(array: np.ndarray, size: tuple[int, ...], fill: float) -> np.ndarray:
    """Crop or pad (with `fill`) the trailing axes of `array` to `size`."""
    lead = array.ndim - len(size)
    pad = [(0, 0)] * lead + [
        (0, max(n - s, 0)) for s, n in zip(array.shape[lead:], size, strict=True)
    ]
    array = np.pad(array, pad, constant_values=fill)
    return array[(Ellipsis, *[slice(0, n) for n in size])]


def augment(
    image: np.ndarray,
    labels: np.ndarray,
    valid: np.ndarray,
    config: AugmentConfig,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A random patch of (image (C, *spatial), labels, valid), transformed consistently."""
    spatial = labels.shape
    ndim = len(spatial)
    zoom = float(rng.uniform(*config.zoom))
    # YX are zoomed; z (3D) keeps its sampling.
    factors = tuple(1.0 if (ndim == 3 and a == 0) else zoom for a in range(ndim))
    source = tuple(int(round(p / f)) for p, f in zip(config.patch, factors, strict=True))
    box = _crop_box(spatial, source, labels, rng, config.foreground_bias)
    img, lab, val = image[(slice(None), *box)], labels[box], valid[box]
    if zoom != 1.0:
        real = tuple(n / s for n, s in zip(config.patch, lab.shape, strict=True))
        img = np.stack([ndi.zoom(c, real, order=1) for c in img])
        lab = ndi.zoom(lab, real, order=0)
        val = ndi.zoom(val.astype(np.uint8), real, order=0).astype(bool)
    img = _fit(img, config.patch, float(img.min()) if img.size else 0.0)
    lab, val = _fit(lab, config.patch, 0), _fit(val, config.patch, True)

    for axis in range(ndim - 2, ndim):  # flips and a quarter turn in YX
        if rng.random() < 0.5:
            img, lab, val = (np.flip(img, axis + 1), np.flip(lab, axis), np.flip(val, axis))
    if config.patch[-1] == config.patch[-2] and rng.random() < 0.5:
        img = np.rot90(img, axes=(ndim - 1, ndim))
        lab, val = (
            np.rot90(lab, axes=(ndim - 2, ndim - 1)),
            np.rot90(val, axes=(ndim - 2, ndim - 1)),
        )
    img = np.ascontiguousarray(img, dtype=np.float32)
    if config.looks:
        img = augment_look(
            img,
            np.ascontiguousarray(lab),
            rng,
            p_dim=min(LOOK_CHANCES[0] * config.looks_rate, 1.0),
            p_compress=min(LOOK_CHANCES[1] * config.looks_rate, 1.0),
        )
    img = _intensity(img, config, rng)
    return img, np.ascontiguousarray(lab), np.ascontiguousarray(val)


def _intensity(img: np.ndarray, config: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    sigma = float(rng.uniform(*config.blur)) if rng.random() < 0.3 else 0.0
    if sigma > 0:
        spatial_sigma = (0.0,) + (sigma,) * (img.ndim - 1)
        img = ndi.gaussian_filter(img, spatial_sigma)
    gamma = float(rng.uniform(*config.gamma))
    img = np.sign(img) * np.abs(img) ** gamma
    img = img * float(rng.uniform(*config.contrast)) + float(rng.uniform(*config.offset))
    noise = float(rng.uniform(*config.noise))
    if noise > 0:
        img = img + rng.normal(0.0, noise, img.shape).astype(np.float32)
    return img.astype(np.float32)
