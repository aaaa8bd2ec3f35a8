"""Run a simulation and write it as a CTC dataset, one frame at a time.

Layout written under the output folder (a dataset such as `Sim-N2DH`):

    01/t000.tif ...                  raw frames (LZW TIFF, the preset's pixel type)
    01_GT/TRA/man_track000.tif ...   every cell in every frame, full masks, label = track id
    01_GT/TRA/man_track.txt          L B E P per track (parents of divisions)
    01_GT/SEG/man_seg000.tif ...     full instance masks on a subset of frames; labels are
                                     unrelated to TRA, as the CTC publishes them

Each frame is rendered, written and dropped before the next, so memory does not grow with the
number of frames. The same preset and seed give byte-identical files.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inference.io import Track, atomic_output_dir, frame_name, write_mask, write_tiff, write_tracks
from training.simulator.population import Population
from training.simulator.presets import Preset
from training.simulator.raster import rasterise
from training.simulator.render import Optics
from training.simulator.visible_tracks import Lineage


@dataclass
class SimulatedFrame:
    """One frame of a simulation: the camera image and its ground truth."""

    index: int
    image: np.ndarray  # raw frame, the preset's dtype
    tracks: np.ndarray  # uint16 labels = track ids (CTC TRA, full masks)
    seg: np.ndarray | None  # uint16 instance labels unrelated to `tracks`, on SEG frames only


@dataclass(frozen=True)
class SimulationSummary:
    """What `simulate` wrote."""

    path: Path
    preset: str
    shape: tuple[int, ...]
    frames: int
    tracks: int
    divisions: int
    seg_frames: int
    seconds: float

    def __str__(self) -> str:
        size = "x".join(str(s) for s in self.shape)
        return (
            f"{self.path}: {self.preset}, {self.frames} frames of {size} px, {self.tracks} tracks, "
            f"{self.divisions} divisions, SEG on {self.seg_frames} frames ({self.seconds:.1f} s)"
        )


def seg_frames(preset: Preset, rng: np.random.Generator) -> np.ndarray:
    """The frames that get SEG ground truth: a random subset of `seg_fraction` (at least one)."""
    count = min(preset.frames, max(1, round(preset.seg_fraction * preset.frames)))
    return np.sort(rng.choice(preset.frames, size=count, replace=False))


def generate(preset: Preset, seed: int, lineage: Lineage | None = None) -> Iterator[SimulatedFrame]:
    """Simulate `preset` frame by frame; pass a `lineage` to read the tracks afterwards.

    Independent random streams drive the cells, the optics and the noise, so that changing
    one (say the noise) keeps the cells' motion identical for the same seed.
    """
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4)]
    dynamics, setup, noise, annotate = streams
    lineage = lineage if lineage is not None else Lineage()
    population = Population(preset, dynamics)
    optics = Optics(preset, setup)
    spacing = np.ones(preset.ndim)
    if preset.ndim == 3:
        spacing[0] = preset.z_scale
    with_seg = set(seg_frames(preset, annotate).tolist())
    for t in range(preset.frames):
        if t > 0:
            population.step()
        cells = population.cells
        frame = rasterise(
            cells, preset.shape, spacing, preset.texture, preset.min_area, preset.core
        )
        rows = frame.visible()
        labels = lineage.update(t, cells.cid[rows], cells.mother[rows], cells.born[rows])
        lut = np.zeros(len(cells) + 1, np.uint16)
        lut[rows + 1] = labels
        seg = None
        if t in with_seg:
            seg_lut = np.zeros(len(cells) + 1, np.uint16)
            seg_lut[rows + 1] = annotate.permutation(len(rows)) + 1
            seg = seg_lut[frame.owner]
        image = optics.record(frame.signal, t, noise)
        yield SimulatedFrame(t, image, lut[frame.owner], seg)


def simulate(
    out: str | Path,
    preset: Preset,
    seed: int = 0,
    *,
    overwrite: bool = False,
    sequence: str = "01",
) -> SimulationSummary:
    """Write a simulated CTC dataset to `out` (atomically; an existing `out` needs `overwrite`)."""
    start = time.perf_counter()
    out = Path(out)
    lineage = Lineage()
    written_seg = 0
    with atomic_output_dir(out, overwrite=overwrite) as tmp:
        raw, tra, seg = (
            tmp / sequence,
            tmp / f"{sequence}_GT" / "TRA",
            tmp / f"{sequence}_GT" / "SEG",
        )
        for folder in (raw, tra, seg):
            folder.mkdir(parents=True)
        n = preset.frames
        for frame in generate(preset, seed, lineage):
            write_tiff(raw / frame_name("t", frame.index, n), frame.image)
            write_mask(tra / frame_name("man_track", frame.index, n), frame.tracks)
            if frame.seg is not None:
                write_mask(seg / frame_name("man_seg", frame.index, n), frame.seg)
                written_seg += 1
        tracks: list[Track] = lineage.tracks()
        write_tracks(tra / "man_track.txt", tracks)
    return SimulationSummary(
        path=out,
        preset=preset.name,
        shape=tuple(preset.shape),
        frames=preset.frames,
        tracks=len(tracks),
        divisions=lineage.divisions,
        seg_frames=written_seg,
        seconds=time.perf_counter() - start,
    )
