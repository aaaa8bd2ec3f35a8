"""Microscope and camera: turn a noise-free fluorescence frame into a recorded image.

Order of the physics: uneven illumination and photobleaching scale the signal, out-of-focus
light adds a wide glow, the point-spread function blurs (more along z in 3D), autofluorescent
background with a gradient is added, photons are counted (Poisson), then the camera adds its
baseline and read noise (Gaussian) and quantises to the dataset's pixel type.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from training.simulator.field import Field
from training.simulator.presets import Preset


def _smooth_field(rng: np.random.Generator, shape: tuple[int, ...], scale: float) -> np.ndarray:
    """A random, smooth field (zero mean, unit std) with features about `scale` px wide."""
    coarse = tuple(max(2, int(np.ceil(s / scale)) + 2) for s in shape)
    noise = ndi.gaussian_filter(rng.normal(size=coarse), 1.0)
    field = ndi.zoom(noise, [s / c for s, c in zip(shape, coarse, strict=True)], order=3)
    field = field[tuple(slice(0, s) for s in shape)]
    return (field - field.mean()) / (field.std() + 1e-12)


def _upsample(small: np.ndarray, size: int, axis: int) -> np.ndarray:
    """Linear interpolation of `small` along `axis` onto `size` pixel centres."""
    n = small.shape[axis]
    x = np.clip((np.arange(size) + 0.5) * n / size - 0.5, 0, n - 1)
    lo = np.floor(x).astype(np.intp)
    hi = np.minimum(lo + 1, n - 1)
    shape = [1] * small.ndim
    shape[axis] = size
    w = (x - lo).astype(np.float32).reshape(shape)
    a, b = np.take(small, lo, axis=axis), np.take(small, hi, axis=axis)
    return a + (b - a) * w


def wide_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of the last two axes with a large `sigma` (out-of-focus glow), computed
    on a block-averaged copy and interpolated back: fast even on large 3D stacks."""
    plane = (0,) * (image.ndim - 2)
    factor = max(1, int(sigma // 4))
    if factor == 1:
        return ndi.gaussian_filter(image, plane + (sigma, sigma))
    h, w = image.shape[-2:]
    sh, sw = -(-h // factor), -(-w // factor)
    pad = [(0, 0)] * (image.ndim - 2) + [(0, sh * factor - h), (0, sw * factor - w)]
    blocks = np.pad(image.astype(np.float32, copy=False), pad, mode="edge")
    blocks = blocks.reshape(*image.shape[:-2], sh, factor, sw, factor).mean(axis=(-3, -1))
    small = ndi.gaussian_filter(blocks, plane + (sigma / factor,) * 2)
    # block centres sit at (i + 0.5) * factor; interpolate onto the image pixel centres
    return _upsample(_upsample(small, sh * factor, -2), sw * factor, -1)[..., :h, :w]


def photon_counts(mean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Poisson samples of `mean` photons: exact below 25 photons, the (indistinguishable)
    rounded normal approximation above, which is much faster on large 3D stacks."""
    mean = np.clip(mean, 0, None).astype(np.float32, copy=False)
    if mean.max(initial=0.0) < 25.0:
        return rng.poisson(mean).astype(np.float32)
    counts = np.empty_like(mean)
    low = mean < 25.0
    counts[low] = rng.poisson(mean[low])
    high = mean[~low]
    counts[~low] = np.rint(high + np.sqrt(high) * rng.standard_normal(high.shape, np.float32))
    return counts


def _egg(preset: Preset) -> np.ndarray:
    """Soft mask (0..1) of the egg that confines an embryo, in pixels of the frame."""
    spacing = np.ones(preset.ndim)
    spacing[0] = preset.z_scale if preset.ndim == 3 else 1.0
    field = Field(np.array(preset.shape) * spacing, confine=True)
    axes = [(np.arange(n) + 0.5) * sp for n, sp in zip(preset.shape, spacing, strict=True)]
    grid = np.meshgrid(*axes, indexing="ij", sparse=True)
    q = sum(((x - c) / a) ** 2 for x, c, a in zip(grid, field.centre, field.egg, strict=True))
    return (1.0 / (1.0 + np.exp((np.sqrt(q) - 1.0) * 25.0))).astype(np.float32)


class Optics:
    """Fixed imaging conditions of one sequence (illumination, background), applied per frame."""

    def __init__(self, preset: Preset, rng: np.random.Generator) -> None:
        self.preset = preset
        shape = preset.shape
        plane = shape[-2:]
        y, x = np.meshgrid(*(np.linspace(-1, 1, s) for s in plane), indexing="ij")
        angle = rng.uniform(0, 2 * np.pi)
        ramp = np.cos(angle) * y + np.sin(angle) * x
        centre = rng.uniform(-0.3, 0.3, 2)
        vignette = (y - centre[0]) ** 2 + (x - centre[1]) ** 2
        blotches = _smooth_field(rng, plane, max(plane) / 4)
        g = preset.gradient
        illumination = 1.0 + g * (0.3 * ramp - 0.25 * vignette + 0.1 * blotches)
        background = 1.0 + g * (0.5 * ramp - 0.3 * vignette + 0.25 * blotches)
        if preset.ndim == 3:  # deeper slices are dimmer (scattering)
            depth = np.linspace(0, 1, shape[0])[:, None, None]
            illumination = illumination[None] * (1.0 - 0.5 * g * depth)
            background = np.broadcast_to(background[None], shape) * (1.0 - 0.2 * g * depth)
        if preset.confine:  # the egg's cytoplasm glows faintly: the embryo's outline shows
            background = background + 0.6 * _egg(preset)
        self.illumination = np.clip(illumination, 0.2, None).astype(np.float32)
        self.background = (preset.background * np.clip(background, 0.1, None)).astype(np.float32)
        self.top = float(np.iinfo(np.dtype(preset.dtype)).max)

    def psf_sigma(self) -> tuple[float, ...]:
        p = self.preset
        return (p.psf_sigma_z, p.psf_sigma, p.psf_sigma) if p.ndim == 3 else (p.psf_sigma,) * 2

    def record(self, signal: np.ndarray, t: int, rng: np.random.Generator) -> np.ndarray:
        """The camera image of frame `t` for a noise-free `signal` (same shape)."""
        p = self.preset
        bleach = (1.0 - p.bleaching) ** t
        light = signal * self.illumination * np.float32(bleach)
        if p.haze > 0:
            glow = wide_blur(light, sigma=6.0 * p.psf_sigma + 10.0)
            light = light + np.float32(p.haze) * glow
        light = ndi.gaussian_filter(light, self.psf_sigma(), mode="nearest")
        light += self.background * np.float32(0.6 + 0.4 * bleach)
        image = photon_counts(light * np.float32(p.photons), rng) / np.float32(p.photons)
        noise = rng.standard_normal(light.shape, np.float32) * np.float32(p.read_noise)
        image += noise + np.float32(p.offset)
        return np.clip(np.rint(image), 0, self.top).astype(p.dtype)
