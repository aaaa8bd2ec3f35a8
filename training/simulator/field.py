"""The space cells live in: where they start, where they enter, and what holds them in.

A field is the imaged volume in physical units (xy pixels; z in xy pixels too). Cells on a
dish start anywhere, often beside each other (colonies), and cross the xy border freely; cells
of an embryo are held inside an ellipsoidal egg and never leave.
"""

from __future__ import annotations

import numpy as np


class Field:
    """Imaged region of `extent` (physical size per axis), optionally an embryo's egg."""

    def __init__(self, extent: np.ndarray, confine: bool) -> None:
        self.extent = np.asarray(extent, float)
        self.ndim = len(self.extent)
        self.confine = confine
        self.centre = self.extent / 2
        self.egg = self.extent * np.array([0.5] + [0.46] * (self.ndim - 1))  # semi-axes

    def inside_point(self, rng: np.random.Generator, r: float) -> np.ndarray:
        """A random centre for a cell of radius `r` that lies wholly in the field (or egg)."""
        if self.confine:
            direction = rng.normal(size=self.ndim)
            direction /= np.linalg.norm(direction)
            reach = rng.uniform(0, 1) ** (1 / self.ndim) * (1 - r / self.egg.min())
            return self.centre + direction * self.egg * reach
        margin = np.minimum(r, self.extent / 2)
        return rng.uniform(margin, self.extent - margin)

    def holds(self, x: np.ndarray, r: float) -> bool:
        """Whether a cell of radius `r` centred at `x` may start there."""
        if self.confine:
            return bool(np.linalg.norm((x - self.centre) / self.egg) <= 1 - r / self.egg.min())
        return bool(np.all(x >= 0) and np.all(x <= self.extent))

    def initial_positions(
        self, rng: np.random.Generator, radius: np.ndarray, clustering: float
    ) -> np.ndarray:
        """Centres for cells of `radius`: a `clustering` fraction beside an earlier cell
        (colonies), the others anywhere; of 20 tries, the one with most room wins."""
        placed = np.zeros((len(radius), self.ndim))
        for k, r in enumerate(radius):
            best, best_gap = None, -np.inf
            for _ in range(20):
                if k and rng.random() < clustering:
                    j = rng.integers(k)
                    step = rng.normal(size=self.ndim)
                    candidate = placed[j] + step / np.linalg.norm(step) * (r + radius[j]) * 1.05
                else:
                    candidate = self.inside_point(rng, r)
                if not self.holds(candidate, r):
                    continue
                distance = np.linalg.norm(placed[:k] - candidate, axis=1)
                gap = float(np.min(distance - (r + radius[:k]))) if k else np.inf
                if gap > best_gap:
                    best, best_gap = candidate, gap
                if gap >= 0:
                    break
            placed[k] = best if best is not None else self.inside_point(rng, r)
        return placed

    def border_entries(
        self, rng: np.random.Generator, depth: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Centres just outside the xy border (`depth` px out, uniform along the border) and
        the inward unit directions; z (3D) is uniform inside the stack."""
        n = len(depth)
        height, width = self.extent[-2:]
        t = rng.uniform(0, 2 * (height + width), n)
        yx, inward = np.zeros((n, 2)), np.zeros((n, 2))
        top, bottom = t < width, (t >= width) & (t < 2 * width)
        left, right = (t >= 2 * width) & (t < 2 * width + height), t >= 2 * width + height
        yx[top] = np.stack([-depth[top], t[top]], 1)
        yx[bottom] = np.stack([height + depth[bottom], t[bottom] - width], 1)
        yx[left] = np.stack([t[left] - 2 * width, -depth[left]], 1)
        yx[right] = np.stack([t[right] - 2 * width - height, width + depth[right]], 1)
        inward[top], inward[bottom], inward[left], inward[right] = (1, 0), (-1, 0), (0, 1), (0, -1)
        pos = np.zeros((n, self.ndim))
        pos[:, -2:] = yx
        if self.ndim == 3:
            pos[:, 0] = rng.uniform(depth, self.extent[0] - depth)
        return pos, inward

    def hold(self, pos: np.ndarray, vel: np.ndarray, r: np.ndarray) -> None:
        """Keep cells of radius `r` inside the egg, or inside the stack along z (in place);
        cells bounce back off the wall."""
        r = r[:, None]
        if self.confine:
            q = (pos - self.centre) / self.egg
            norm = np.linalg.norm(q, axis=1, keepdims=True)
            limit = np.clip(1 - r / self.egg.min(), 0.05, None)
            out = (norm > limit)[:, 0]
            pos[out] = self.centre + q[out] / norm[out] * limit[out] * self.egg
            vel[out] *= -0.5
        elif self.ndim == 3:  # a dish in 3D: cells leave through x and y, never through z
            z = pos[:, 0].copy()
            pos[:, 0] = np.clip(z, r[:, 0], self.extent[0] - r[:, 0])
            vel[(z < r[:, 0]) | (z > self.extent[0] - r[:, 0]), 0] *= -1

    def far_outside(self, pos: np.ndarray, r: np.ndarray) -> np.ndarray:
        """Cells more than 3 radii beyond the xy border: gone for good."""
        reach = (3 * r)[:, None]
        return np.any((pos[:, -2:] < -reach) | (pos[:, -2:] > self.extent[-2:] + reach), axis=1)
