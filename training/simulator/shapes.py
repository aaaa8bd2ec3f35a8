"""Nucleus shapes and textures: irregular star-convex bodies with chromatin-like interiors.

A nucleus is an ellipse (ellipsoid in 3D) whose boundary is perturbed by a few smooth random
functions of the direction, so it stays star-convex around its centre: every pixel gets a
normalised radius `rho` (< 1 inside, 0 at the centre). Its interior is a smooth random field
(blotchy chromatin, a small periodic patch per cell) plus Gaussian spots (bright speckles, dark
nucleoli), all in the cell's own frame, so shape and texture move, turn and stretch with it.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from training.simulator.presets import Preset

#: Number of boundary perturbation terms and spot slots per cell.
HARMONICS, SPOTS = 4, 5
#: Texture patch: grid points per axis, and the half-width it spans in semi-axis units.
TEXTURE_GRID = {2: 32, 3: 16}
TEXTURE_SPAN = 1.3


def random_rotations(rng: np.random.Generator, n: int, ndim: int) -> np.ndarray:
    """`n` uniformly random rotation matrices (n, ndim, ndim); columns are the cell axes."""
    if ndim == 2:
        angle = rng.uniform(0, 2 * np.pi, n)
        c, s = np.cos(angle), np.sin(angle)
        return np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)
    q, r = np.linalg.qr(rng.normal(size=(n, 3, 3)))
    q = q * np.sign(np.diagonal(r, axis1=1, axis2=2))[:, None, :]
    q[np.linalg.det(q) < 0, :, 2] *= -1
    return q


def small_rotations(rng: np.random.Generator, n: int, ndim: int, sigma: float) -> np.ndarray:
    """Random rotations by about `sigma` radians: the slow turning of a cell between frames."""
    if ndim == 2:
        angle = rng.normal(0, sigma, n)
        c, s = np.cos(angle), np.sin(angle)
        return np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)
    w = rng.normal(0, sigma, (n, 3))
    k = np.zeros((n, 3, 3))
    k[:, 0, 1], k[:, 0, 2], k[:, 1, 2] = -w[:, 2], w[:, 1], -w[:, 0]
    k -= np.transpose(k, (0, 2, 1))
    q, r = np.linalg.qr(np.eye(3) + k)  # first-order rotation, re-orthonormalised
    return q * np.sign(np.diagonal(r, axis1=1, axis2=2))[:, None, :]


def _unit(rng: np.random.Generator, shape: tuple[int, ...], ndim: int) -> np.ndarray:
    v = rng.normal(size=(*shape, ndim))
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def random_appearance(rng: np.random.Generator, n: int, preset: Preset) -> dict[str, np.ndarray]:
    """Shape and texture parameters of `n` new cells, one array per parameter (first axis n)."""
    d = preset.ndim
    aspect = 1.0 + (preset.aspect - 1.0) * rng.gamma(4.0, 0.25, n)
    axes = np.ones((n, d))
    axes[:, 0] = aspect
    axes /= np.prod(axes, axis=1, keepdims=True) ** (1.0 / d)  # same area / volume
    harm_amp = preset.irregularity * rng.uniform(0.3, 1.0, (n, HARMONICS)) / np.sqrt(HARMONICS)
    nucleoli = rng.poisson(preset.nucleoli, n)
    speckles = rng.poisson(preset.speckles, n)
    slot = np.arange(SPOTS)[None, :]
    dark = slot < np.minimum(nucleoli, SPOTS)[:, None]
    bright = ~dark & (slot < np.minimum(nucleoli + speckles, SPOTS)[:, None])
    spot_amp = np.where(dark, -rng.uniform(0.35, 0.6, (n, SPOTS)), 0.0)
    spot_amp = np.where(bright, rng.uniform(0.3, 1.0, (n, SPOTS)), spot_amp)
    spot_size = np.where(
        dark, rng.uniform(0.12, 0.22, (n, SPOTS)), rng.uniform(0.06, 0.14, (n, SPOTS))
    )
    spot_pos = _unit(rng, (n, SPOTS), d) * rng.uniform(0.0, 0.8, (n, SPOTS, 1))
    return {
        "rot": random_rotations(rng, n, d),
        "axes": axes,
        "harm_dir": _unit(rng, (n, HARMONICS), d),
        "harm_freq": rng.uniform(1.5, 4.5, (n, HARMONICS)),
        "harm_phase": rng.uniform(0, 2 * np.pi, (n, HARMONICS)),
        "harm_amp": harm_amp,
        "tex": texture_patches(rng, n, d, preset.texture_scale),
        "tex_shift": rng.uniform(0, 2 * TEXTURE_SPAN, (n, d)),
        "spot_pos": spot_pos,
        "spot_size": spot_size,
        "spot_amp": spot_amp,
    }


def texture_patches(rng: np.random.Generator, n: int, ndim: int, scale: float) -> np.ndarray:
    """`n` periodic smooth random fields (zero mean, unit std) with blobs of about
    1 / (2 `scale`) semi-axes, sampled inside each cell as its chromatin texture."""
    g = TEXTURE_GRID[ndim]
    sigma = g / (2 * TEXTURE_SPAN) / (4.0 * scale)
    noise = rng.normal(size=(n,) + (g,) * ndim).astype(np.float32)
    field = ndi.gaussian_filter(noise, (0,) + (sigma,) * ndim, mode="wrap")
    axes = tuple(range(1, ndim + 1))
    field -= field.mean(axis=axes, keepdims=True)
    field /= field.std(axis=axes, keepdims=True) + 1e-6
    return field


def bounding_radius(semi_axes: np.ndarray, harm_amp: np.ndarray) -> np.ndarray:
    """Radius of a ball around the centre that surely holds the whole cell (per cell)."""
    return semi_axes.max(axis=-1) * np.exp(np.abs(harm_amp).sum(axis=-1))


def normalised_radius(
    e: np.ndarray,
    harm_dir: np.ndarray,
    harm_freq: np.ndarray,
    harm_phase: np.ndarray,
    harm_amp: np.ndarray,
) -> np.ndarray:
    """`rho` of points `e` (P, D) given in semi-axis units of one cell: < 1 inside, 1 on the edge.

    The boundary radius in direction n is exp(sum_j a_j cos(f_j (n . v_j) + phi_j)): smooth,
    positive (so the shape stays star-convex), about 1 + the sum for small amplitudes, with
    lobes and protrusions for large ones; different for every cell.
    """
    r0 = np.sqrt(np.einsum("pd,pd->p", e, e))
    n = e / np.maximum(r0, 1e-9)[:, None]
    boundary = np.exp(np.cos((n @ harm_dir.T) * harm_freq + harm_phase) @ harm_amp)
    return r0 / boundary


def texture(
    e: np.ndarray,
    strength: float,
    tex: np.ndarray,
    tex_shift: np.ndarray,
    spot_pos: np.ndarray,
    spot_size: np.ndarray,
    spot_amp: np.ndarray,
) -> np.ndarray:
    """Relative intensity (about 1) inside one cell at points `e` (P, D), semi-axis units."""
    g = tex.shape[0]
    coords = (e + tex_shift) * (g / (2 * TEXTURE_SPAN))
    blotches = ndi.map_coordinates(tex, coords.T, order=1, mode="grid-wrap")
    d2 = ((e[:, None, :] - spot_pos[None]) ** 2).sum(-1)
    spots = np.exp(-d2 / (2.0 * spot_size**2)) @ spot_amp
    return np.clip(1.0 + strength * blotches + spots, 0.05, None)


def edge_profile(rho: np.ndarray, core: float = 0.0) -> np.ndarray:
    """Intensity fall-off towards the edge: a nucleus is flat inside and dimmer near the rim;
    with `core` > 0 (whole-cell stains) the thick centre is bright and thin edges are dim."""
    rim = np.sqrt(np.clip(1.0 - rho**3, 0.0, 1.0)) * 0.6 + 0.4
    return rim * (1.0 - core * np.clip(rho, 0.0, 1.0) ** 0.7)
