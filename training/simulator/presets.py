"""Simulation settings, one validated preset per CTC dataset the simulator imitates.

Every number is in pixels and frames of the imitated dataset (z in xy pixels times `z_scale`),
so a preset reads like a description of the data: how big the nuclei are, how fast they move,
how often they divide, how bright and noisy the images are. Values marked "measured" come from
`benchmarks/simulator_realism.py` on the real training sequence; the others are set by eye.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any

#: Settings that are fractions in 0..1.
_FRACTIONS = ("radius_cv", "irregularity", "texture", "core", "brightness_cv", "gradient", "haze")


@dataclass(frozen=True)
class Preset:
    """All settings of one simulation; invalid values raise ValueError naming the field."""

    name: str
    description: str
    ndim: int  # 2 (YX frames) or 3 (ZYX stacks)
    shape: tuple[int, ...]  # (Y, X) or (Z, Y, X) in pixels
    frames: int
    cells: int  # cells in the field at frame 0
    radius: float  # mean nucleus radius, xy px
    z_scale: float = 1.0  # z step in xy pixels (3D anisotropy)
    # cells
    radius_cv: float = 0.15  # cell-to-cell size spread
    aspect: float = 1.25  # mean long / short axis ratio
    irregularity: float = 0.06  # amplitude of the boundary perturbation
    texture: float = 0.25  # contrast of the internal chromatin texture
    texture_scale: float = 1.5  # spatial frequency of the texture, cycles per radius
    nucleoli: float = 0.0  # mean number of dark nucleoli per nucleus
    speckles: float = 2.0  # mean number of bright chromatin spots per nucleus
    core: float = 0.0  # 0: evenly stained nucleus; towards 1: bright centre, dim thin edges
    # motion (px per frame)
    speed: float = 2.0  # random-walk velocity std per axis
    persistence: float = 0.7  # velocity autocorrelation from one frame to the next
    fast_fraction: float = 0.03  # chance per cell and frame of a fast step
    fast_step: float = 0.8  # length of a fast step, fraction of the radius
    contact: float = 0.92  # cells push apart below this fraction of r_i + r_j
    clustering: float = 0.3  # fraction of initial cells placed beside another (colonies)
    # lineage (per cell and frame)
    division_rate: float = 0.01
    mitosis_frames: int = 3  # frames a mother spends rounding up and elongating
    growth: bool = True  # cells regain their size before dividing (False: embryo cleavage)
    max_coverage: float = 0.4  # no new mitoses or entries while cells fill more of the field
    death_rate: float = 0.001
    death_frames: int = 4  # frames a dying cell shrinks and fades before it vanishes
    entry_rate: float = 0.3  # cells entering per frame per 1000 px of border
    confine: bool = False  # keep cells inside an embryo-like ellipsoid (3D embryos)
    # optics and camera (output grey levels)
    dtype: str = "uint16"
    offset: float = 80.0  # camera baseline, noise-free
    background: float = 12.0  # autofluorescence above the offset (photon noise applies)
    brightness: float = 60.0  # mean nucleus signal above the background
    brightness_cv: float = 0.25  # cell-to-cell brightness spread
    gradient: float = 0.3  # background ramp and vignetting, fraction of the background
    haze: float = 0.08  # out-of-focus glow around cells, fraction of their signal
    psf_sigma: float = 1.5  # xy blur, px
    psf_sigma_z: float = 1.0  # z blur, slices
    photons: float = 1.0  # photons per grey level: lower = more Poisson noise
    read_noise: float = 3.0  # Gaussian camera noise std, grey levels
    bleaching: float = 0.003  # fraction of the signal lost per frame
    seg_fraction: float = 0.5  # fraction of frames with SEG ground truth
    min_area: int = 12  # pixels (voxels) a cell needs to count as in the field

    def __post_init__(self) -> None:
        def need(ok: bool, name: str, what: str) -> None:
            if not ok:
                raise ValueError(f"{name}={getattr(self, name)!r}: {what}")

        need(self.ndim in (2, 3), "ndim", "must be 2 or 3")
        need(len(self.shape) == self.ndim, "shape", f"needs {self.ndim} sizes")
        need(all(int(s) >= 16 for s in self.shape[-2:]), "shape", "Y and X must be >= 16 px")
        need(self.ndim == 2 or self.shape[0] >= 1, "shape", "Z must be >= 1 slice")
        need(self.frames >= 1, "frames", "must be >= 1")
        need(0 <= self.cells <= 5000, "cells", "must lie in 0..5000")
        need(self.radius >= 2.0, "radius", "must be >= 2 px")
        need(
            min(self.shape[-2:]) >= 2 * self.radius,
            "shape",
            f"too small for cells of radius {self.radius:g} px: Y and X must be >= "
            f"{math.ceil(2 * self.radius)} px",
        )
        need(self.z_scale >= 1.0 and (self.ndim == 3 or self.z_scale == 1.0), "z_scale", ">= 1")
        for name in _FRACTIONS:
            need(0.0 <= getattr(self, name) <= 1.0, name, "must lie in 0..1")
        need(1.0 <= self.aspect <= 6.0, "aspect", "must lie in 1..6")
        need(0.0 <= self.persistence < 1.0, "persistence", "must lie in 0..1 (exclusive)")
        need(0.05 <= self.max_coverage <= 0.95, "max_coverage", "must lie in 0.05..0.95")
        for name in ("fast_fraction", "clustering", "seg_fraction"):
            need(0.0 <= getattr(self, name) <= 1.0, name, "must lie in 0..1")
        for name in ("division_rate", "death_rate"):
            need(0.0 <= getattr(self, name) <= 0.2, name, "must lie in 0..0.2 per frame")
        for name in ("speed", "fast_step", "entry_rate", "nucleoli", "speckles", "read_noise"):
            need(getattr(self, name) >= 0.0, name, "must be >= 0")
        need(self.texture_scale > 0, "texture_scale", "must be > 0")
        need(0.5 <= self.contact <= 1.2, "contact", "must lie in 0.5..1.2")
        need(self.mitosis_frames >= 1, "mitosis_frames", "must be >= 1")
        need(self.death_frames >= 1, "death_frames", "must be >= 1")
        need(self.dtype in ("uint8", "uint16"), "dtype", "must be uint8 or uint16")
        top = 255 if self.dtype == "uint8" else 65535
        need(0 <= self.offset < top, "offset", f"must lie in 0..{top}")
        need(self.background >= 0 and self.brightness > 0, "brightness", "must be > 0")
        need(self.photons > 0, "photons", "must be > 0")
        need(self.psf_sigma >= 0 and self.psf_sigma_z >= 0, "psf_sigma", "must be >= 0")
        need(0.0 <= self.bleaching < 0.5, "bleaching", "must lie in 0..0.5")
        need(self.min_area >= 1, "min_area", "must be >= 1")

    def with_options(
        self,
        *,
        frames: int | None = None,
        size: tuple[int, ...] | None = None,
        cells: int | None = None,
        seg_fraction: float | None = None,
    ) -> Preset:
        """This preset with explicit options applied (validated again).

        A new `size` of Y and X (or Z, Y, X) keeps the density: unless `cells` is given, the
        initial cell count scales with the field area. In 3D a 2-number size keeps the depth.
        """
        changes: dict[str, Any] = {}
        if size is not None:
            if self.ndim == 3 and len(size) == 2:
                size = (self.shape[0], *size)
            if len(size) != self.ndim:
                raise ValueError(f"size {size}: a {self.ndim}D preset needs {self.ndim} sizes")
            changes["shape"] = tuple(int(s) for s in size)
            if cells is None:
                ratio = math.prod(size[-2:]) / math.prod(self.shape[-2:])
                changes["cells"] = max(1, round(self.cells * ratio))
        if frames is not None:
            changes["frames"] = frames
        if cells is not None:
            changes["cells"] = cells
        if seg_fraction is not None:
            changes["seg_fraction"] = seg_fraction
        return replace(self, **changes)

    def summary(self) -> str:
        """One line: the geometry of the simulated sequence."""
        size = "x".join(str(s) for s in self.shape)
        return f"{self.name}: {self.ndim}D {size} px, {self.frames} frames, {self.cells} cells"


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            name="Fluo-N2DH-SIM+",
            description="simulated HL60 nuclei (the CTC's own simulator): sparse, textured, "
            "rarely touching, moderate noise",
            ndim=2,
            shape=(690, 628),
            frames=65,
            cells=26,  # measured: 30 cells at frame 0, 40 per frame on average
            radius=24.0,  # measured: median equivalent diameter 49 px (incl. mitoses)
            radius_cv=0.12,
            aspect=1.12,
            irregularity=0.09,
            texture=0.4,
            texture_scale=1.6,
            speckles=2.5,
            speed=3.2,  # measured: median step 3.5 px, 90th percentile 5.5 px
            persistence=0.8,
            fast_fraction=0.0,
            contact=1.08,  # SIM+ nuclei keep a gap (measured: no touching cells)
            clustering=0.1,
            division_rate=0.013,  # measured: 0.012 per cell and frame
            death_rate=0.0005,
            entry_rate=0.06,
            offset=80.0,
            background=12.0,  # measured: background 92, std 4.9
            brightness=55.0,  # measured: foreground 152 (ratio 1.41)
            brightness_cv=0.22,
            psf_sigma=2.5,
            photons=1.0,
            read_noise=3.0,
            bleaching=0.002,
            seg_fraction=1.0,
        ),
        Preset(
            name="Fluo-N2DL-HeLa",
            description="HeLa H2B-GFP nuclei: small, crowded, touching, many divisions",
            ndim=2,
            shape=(700, 1100),
            frames=92,
            cells=50,  # measured on a result: 93 cells per frame, 44 at frame 0 to 137
            radius=13.5,  # measured on a result: median equivalent diameter 26 px
            radius_cv=0.2,
            aspect=1.35,
            irregularity=0.08,
            texture=0.2,
            texture_scale=1.2,
            speckles=1.0,
            speed=1.6,  # measured on a result: median step 2.2 px, 90th percentile 5.9 px
            persistence=0.5,
            fast_fraction=0.15,
            fast_step=0.5,
            contact=1.0,
            clustering=0.4,
            division_rate=0.013,  # measured on a result: 0.013
            mitosis_frames=2,
            death_rate=0.001,
            entry_rate=0.03,
            offset=3200.0,
            background=400.0,
            brightness=2500.0,
            brightness_cv=0.35,
            gradient=0.2,
            psf_sigma=1.2,
            photons=0.2,
            read_noise=30.0,
            bleaching=0.002,
            seg_fraction=0.3,
        ),
        Preset(
            name="Fluo-N3DH-CE",
            description="C. elegans embryo nuclei in 3D: anisotropic stacks, confined in the "
            "egg, frequent divisions, strong blur in z",
            ndim=3,
            shape=(35, 512, 708),
            z_scale=8.0,
            frames=40,
            cells=24,
            radius=24.0,
            radius_cv=0.15,
            aspect=1.2,
            irregularity=0.05,
            texture=0.25,
            speckles=2.0,
            speed=2.0,
            persistence=0.6,
            fast_fraction=0.02,
            contact=0.9,
            clustering=0.0,
            division_rate=0.02,
            mitosis_frames=3,
            growth=False,
            max_coverage=0.35,
            death_rate=0.0,
            entry_rate=0.0,
            confine=True,
            dtype="uint8",
            offset=8.0,
            background=8.0,
            brightness=70.0,
            brightness_cv=0.3,
            gradient=0.4,
            haze=0.2,
            psf_sigma=2.5,
            psf_sigma_z=1.2,
            photons=0.6,
            read_noise=3.0,
            bleaching=0.006,
            seg_fraction=0.25,
            min_area=40,
        ),
        Preset(
            name="Fluo-N2DH-GOWT1",
            description="mouse embryonic stem cell nuclei: large, smooth, dark nucleoli, very "
            "uneven brightness, slow, rare divisions",
            ndim=2,
            shape=(1024, 1024),
            frames=92,
            cells=22,  # measured: 22 cells per frame
            radius=29.0,  # measured: median equivalent diameter 60 px
            radius_cv=0.12,
            aspect=1.2,
            irregularity=0.03,
            texture=0.15,
            texture_scale=3.0,
            nucleoli=1.8,
            speckles=0.5,
            speed=1.5,  # measured: median step 2 px, 90th percentile 6 px
            persistence=0.6,
            fast_fraction=0.08,
            fast_step=0.35,
            contact=1.1,  # measured: nuclei hardly ever touch
            clustering=0.2,
            division_rate=0.001,  # measured: 0.001
            death_rate=0.0005,
            entry_rate=0.005,
            dtype="uint8",
            offset=0.0,
            background=3.0,  # measured: background 2, foreground 38
            brightness=45.0,
            brightness_cv=0.6,
            gradient=0.5,
            haze=0.15,
            psf_sigma=1.2,
            photons=0.3,
            read_noise=1.5,
            bleaching=0.002,
            seg_fraction=0.3,
        ),
        Preset(
            name="Fluo-C2DL-MSC",
            description="rat mesenchymal stem cells, whole-cell stain: large, elongated, "
            "irregular, low contrast, fast and rarely dividing",
            ndim=2,
            shape=(832, 992),
            frames=48,
            cells=7,  # measured: 9 cells per frame
            radius=33.0,  # measured: median equivalent diameter 75 px
            radius_cv=0.3,
            aspect=2.5,
            irregularity=0.5,
            texture=0.3,
            texture_scale=1.0,
            speckles=1.0,
            core=0.85,
            speed=6.5,  # measured: median step 8.8 px, 90th percentile 28 px
            persistence=0.5,
            fast_fraction=0.2,
            fast_step=0.8,
            contact=1.2,
            clustering=0.0,
            division_rate=0.001,  # measured: none in 48 frames
            death_rate=0.0,
            entry_rate=0.02,
            offset=6000.0,
            background=1600.0,  # measured: background 7600, std 1300
            brightness=8000.0,  # measured: foreground 12100 (ratio 1.33)
            brightness_cv=0.4,
            gradient=0.1,
            haze=0.1,
            psf_sigma=2.0,
            photons=0.004,
            read_noise=1100.0,
            bleaching=0.001,
            seg_fraction=0.4,
            min_area=30,
        ),
    )
}

#: The preset used when none is named, per number of dimensions.
DEFAULT_PRESET = {2: "Fluo-N2DH-SIM+", 3: "Fluo-N3DH-CE"}


def get_preset(name: str) -> Preset:
    """The preset called `name` (case-insensitive); ValueError lists the known names."""
    for key, preset in PRESETS.items():
        if key.lower() == name.lower():
            return preset
    raise ValueError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")


def preset_fields() -> list[str]:
    """Names of all settings, for documentation and error messages."""
    return [f.name for f in fields(Preset)]
