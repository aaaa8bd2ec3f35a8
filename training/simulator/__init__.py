"""Realistic simulated Cell Tracking Challenge data: moving, dividing, textured nuclei.

`simulate(out, preset, seed)` writes a full CTC dataset (raw frames, TRA and SEG ground truth,
man_track.txt); `generate(preset, seed)` yields the same frames in memory. Presets imitate
CTC datasets (`PRESETS`, `get_preset`); `statistics` measures real and simulated sequences
alike so the two can be compared.
"""

from training.simulator.presets import DEFAULT_PRESET, PRESETS, Preset, get_preset
from training.simulator.visible_tracks import Lineage
from training.simulator.writer import SimulatedFrame, SimulationSummary, generate, simulate

__all__ = [
    "DEFAULT_PRESET",
    "PRESETS",
    "Lineage",
    "Preset",
    "SimulatedFrame",
    "SimulationSummary",
    "generate",
    "get_preset",
    "simulate",
]
