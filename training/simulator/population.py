"""Cell population dynamics: motion, crowding, growth, division, death, entering and leaving.

Cells live in continuous physical coordinates (xy pixels; z in xy pixels too, so 3D motion is
isotropic) and are advanced one frame at a time, vectorised over all cells. Whether a cell is
in the field, and so on which CTC track it is, is decided later from what is rendered.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
from scipy.spatial import cKDTree

from training.simulator.field import Field
from training.simulator.presets import Preset
from training.simulator.shapes import random_appearance, small_rotations


@dataclass
class Cells:
    """State of all cells, one row per cell (structure of arrays)."""

    cid: np.ndarray  # unique cell id, never reused
    mother: np.ndarray  # cid of the mother, -1 for cells not born by division
    born: np.ndarray  # frame of birth (division or entry)
    pos: np.ndarray  # (n, d) centre
    vel: np.ndarray  # (n, d) velocity, px per frame
    radius: np.ndarray  # current base radius (grows through the cycle)
    r_birth: np.ndarray
    brightness: np.ndarray
    age: np.ndarray
    cycle: np.ndarray  # frames from birth to mitosis
    state: np.ndarray  # 0 interphase, 1 mitosis, 2 dying
    timer: np.ndarray  # frames left in mitosis or dying
    stretch: np.ndarray  # elongation along the long axis (mitosis)
    shrink: np.ndarray  # size factor (mitosis, death)
    glow: np.ndarray  # brightness factor (condensed chromatin, fading)
    rot: np.ndarray
    axes: np.ndarray
    harm_dir: np.ndarray
    harm_freq: np.ndarray
    harm_phase: np.ndarray
    harm_amp: np.ndarray
    tex: np.ndarray  # (n, g, g[, g]) chromatin texture patch
    tex_shift: np.ndarray  # (n, d) slow drift of the texture inside the cell
    spot_pos: np.ndarray
    spot_size: np.ndarray
    spot_amp: np.ndarray

    def __len__(self) -> int:
        return len(self.cid)

    def take(self, index: np.ndarray) -> Cells:
        """The cells selected by an index or boolean array."""
        return Cells(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def append(self, other: Cells) -> Cells:
        """These cells followed by `other`."""
        names = [f.name for f in fields(self)]
        return Cells(**{n: np.concatenate([getattr(self, n), getattr(other, n)]) for n in names})

    def semi_axes(self) -> np.ndarray:
        """Effective semi-axes (n, d) in px: size, shape, mitotic stretch and shrinking."""
        d = self.axes.shape[1]
        factor = np.ones_like(self.axes)
        factor[:, 0] = self.stretch
        factor[:, 1:] = self.stretch[:, None] ** (-0.7 / max(d - 1, 1))
        return (self.radius * self.shrink)[:, None] * self.axes * factor


class Population:
    """The cells of one simulated sequence, advanced frame by frame with `step`."""

    def __init__(self, preset: Preset, rng: np.random.Generator) -> None:
        self.preset = preset
        self.rng = rng
        self.frame = 0
        scale = np.ones(preset.ndim)
        scale[0] = preset.z_scale if preset.ndim == 3 else 1.0
        self.extent = np.array(preset.shape, float) * scale  # physical size of the field
        self.field = Field(self.extent, preset.confine)
        self._next_id = 1
        self.cells = self._new(preset.cells)
        self.cells.pos = self.field.initial_positions(rng, self.cells.radius, preset.clustering)
        self.cells.age = self._ages(self.cells.cycle)
        self.cells.radius = self._size(self.cells)

    # -- creation -------------------------------------------------------------------------
    def _cycles(self, n: int) -> np.ndarray:
        """Interphase lengths: in a growing population dividing every T frames, divisions
        per cell and frame are ln 2 / T, so T = ln 2 / division_rate (mitosis included)."""
        p = self.preset
        if p.division_rate == 0:
            return np.full(n, np.inf)
        mean = max(np.log(2.0) / p.division_rate - p.mitosis_frames, 1.0)
        return self.rng.gamma(16.0, mean / 16.0, n)

    def _ages(self, cycle: np.ndarray) -> np.ndarray:
        """Ages drawn from the steady age distribution of a growing population (more young
        cells than old ones), so divisions happen at the steady rate from the first frame."""
        u = self.rng.uniform(0, 1, len(cycle))
        return np.where(np.isfinite(cycle), -np.log2(1 - u / 2) * np.minimum(cycle, 1e9), 0.0)

    def _new(self, n: int, mother: np.ndarray | None = None) -> Cells:
        p, d, rng = self.preset, self.preset.ndim, self.rng
        size = rng.lognormal(0.0, p.radius_cv, n) * p.radius
        cells = Cells(
            cid=np.arange(self._next_id, self._next_id + n, dtype=np.int64),
            mother=np.full(n, -1, np.int64) if mother is None else mother.astype(np.int64),
            born=np.full(n, self.frame, np.int64),
            pos=np.zeros((n, d)),
            vel=rng.normal(0, p.speed, (n, d)),
            radius=size,
            # `radius` is the mean over a cell cycle, in which the volume doubles
            r_birth=size / (1.5 ** (1.0 / d) if p.division_rate > 0 and p.growth else 1.0),
            brightness=p.brightness * rng.lognormal(0.0, p.brightness_cv, n),
            age=np.zeros(n),
            cycle=self._cycles(n),
            state=np.zeros(n, np.int8),
            timer=np.zeros(n, np.int64),
            stretch=np.ones(n),
            shrink=np.ones(n),
            glow=np.ones(n),
            **random_appearance(rng, n, p),
        )
        self._next_id += n
        return cells

    # -- dynamics ------------------------------------------------------------------------
    def step(self) -> None:
        """Advance one frame: lineage events, growth, motion, crowding, entering, leaving."""
        p = self.preset
        self.frame += 1
        cells = self.cells
        done = (cells.state > 0) & (cells.timer <= 0)
        dividing = np.flatnonzero(done & (cells.state == 1))
        daughters = self._divide(cells.take(dividing)) if dividing.size else None
        cells = cells.take(~done)
        if daughters is not None:
            cells = cells.append(daughters)
        idle = cells.state == 0
        start = idle & (cells.age >= cells.cycle) & (self.coverage(cells) < p.max_coverage)
        cells.state[start], cells.timer[start] = 1, p.mitosis_frames
        die = idle & ~start & (self.rng.random(len(cells)) < p.death_rate)
        cells.state[die], cells.timer[die] = 2, p.death_frames
        busy = cells.state > 0
        cells.timer[busy] -= 1
        self.cells = cells
        self._appearance()
        self._move()
        self._enter()
        self._leave()

    def _divide(self, mothers: Cells) -> Cells:
        """Two daughters per mother, placed along its long axis, moving apart."""
        n, d = len(mothers), self.preset.ndim
        kids = self._new(2 * n, mother=np.repeat(mothers.cid, 2))
        side = np.tile([1.0, -1.0], n)[:, None]
        axis = np.repeat(mothers.rot[:, :, 0], 2, axis=0)
        reach = np.repeat(mothers.semi_axes()[:, 0], 2)[:, None]
        kids.pos = np.repeat(mothers.pos, 2, axis=0) + side * axis * reach * 0.5
        kids.vel = np.repeat(mothers.vel, 2, axis=0) * 0.5 + side * axis * reach * 0.1
        r = np.repeat(mothers.radius, 2) / 2 ** (1.0 / d) * self.rng.uniform(0.92, 1.08, 2 * n)
        r = np.maximum(r, 0.35 * self.preset.radius)  # cleavage: nuclei shrink, to a limit
        kids.radius, kids.r_birth = r, r
        kids.brightness = np.repeat(mothers.brightness, 2) * self.rng.uniform(0.9, 1.1, 2 * n)
        order = [1, 0, *range(2, d)]  # daughters lie across the division axis
        rot = np.repeat(mothers.rot, 2, axis=0)[:, :, order]
        rot[:, :, -1] *= -1
        kids.rot = rot
        kids.glow = np.full(2 * n, 1.6)
        return kids

    def _appearance(self) -> None:
        c, p = self.cells, self.preset
        progress = np.zeros(len(c))
        mit, dying = c.state == 1, c.state == 2
        progress[mit] = 1.0 - c.timer[mit] / p.mitosis_frames
        progress[dying] = 1.0 - c.timer[dying] / p.death_frames
        c.age += 1
        c.radius = np.where(mit | dying, c.radius, self._size(c))
        c.stretch = np.where(mit, 1.0 + 0.5 * progress, 1.0)
        c.shrink = np.where(mit, 1.0 - 0.15 * progress, np.where(dying, 1 - 0.6 * progress, 1.0))
        relaxed = 1.0 + (c.glow - 1.0) * 0.6  # new daughters dim back to normal
        c.glow = np.where(mit, 1.0 + 0.7 * progress, np.where(dying, 1 - 0.7 * progress, relaxed))
        c.rot = small_rotations(self.rng, len(c), p.ndim, 0.05) @ c.rot
        c.harm_phase = c.harm_phase + self.rng.normal(0, 0.15, c.harm_phase.shape)
        c.tex_shift = c.tex_shift + self.rng.normal(0, 0.03, c.tex_shift.shape)

    def _move(self) -> None:
        """Persistent random walk, occasional fast steps, then pushing overlapping cells apart."""
        c, p, rng = self.cells, self.preset, self.rng
        n, d = len(c), p.ndim
        if n == 0:
            return
        a = p.persistence
        c.vel = a * c.vel + np.sqrt(1 - a * a) * rng.normal(0, p.speed, (n, d))
        step = c.vel.copy()
        fast = rng.random(n) < p.fast_fraction
        if fast.any():
            direction = rng.normal(size=(int(fast.sum()), d))
            direction /= np.linalg.norm(direction, axis=1, keepdims=True)
            step[fast] += direction * (p.fast_step * c.radius[fast])[:, None]
        c.pos = c.pos + step
        r = c.radius * c.shrink
        for _ in range(3):
            pairs = cKDTree(c.pos).query_pairs(
                2 * p.contact * float(r.max()), output_type="ndarray"
            )
            if len(pairs) == 0:
                break
            i, j = pairs[:, 0], pairs[:, 1]
            delta = c.pos[i] - c.pos[j]
            dist = np.maximum(np.linalg.norm(delta, axis=1), 1e-6)
            push = np.clip(p.contact * (r[i] + r[j]) - dist, 0, None) * 0.35
            shift = delta / dist[:, None] * push[:, None]
            np.add.at(c.pos, i, shift)
            np.add.at(c.pos, j, -shift)
        self.field.hold(c.pos, c.vel, r)

    def _enter(self) -> None:
        """New cells drift in across the xy border (Poisson, per 1000 px of border)."""
        p, rng = self.preset, self.rng
        if p.confine or p.entry_rate == 0 or self.coverage(self.cells) >= p.max_coverage:
            return
        count = rng.poisson(p.entry_rate * 2 * self.extent[-2:].sum() / 1000.0)
        if count == 0:
            return
        new = self._new(count)
        new.pos, inward = self.field.border_entries(rng, new.radius * rng.uniform(0.3, 0.9, count))
        new.vel[:, -2:] += inward * p.speed * rng.uniform(1.0, 2.0, (count, 1))
        new.age = self._ages(new.cycle)
        self.cells = self.cells.append(new)

    def _leave(self) -> None:
        """Forget cells that drifted well outside the field (their tracks have ended)."""
        far = self.field.far_outside(self.cells.pos, self.cells.radius)
        if far.any():
            self.cells = self.cells.take(~far)

    def _size(self, c: Cells) -> np.ndarray:
        """Radius for the age: the volume doubles over the cycle (unless embryo cleavage)."""
        if not self.preset.growth:
            return c.r_birth
        return c.r_birth * (1.0 + np.clip(c.age / c.cycle, 0, 1)) ** (1.0 / self.preset.ndim)

    def coverage(self, c: Cells) -> float:
        """Fraction of the field (or the egg) filled by cells with their centre in it."""
        d = self.preset.ndim
        unit = np.pi if d == 2 else 4.0 / 3.0 * np.pi
        if self.preset.confine:
            room = unit * float(np.prod(self.field.egg))
            inside = np.ones(len(c), bool)
        else:
            room = float(np.prod(self.extent))
            inside = np.all((c.pos >= 0) & (c.pos <= self.extent), axis=1)
        return float(unit * np.sum(c.radius[inside] ** d)) / room
