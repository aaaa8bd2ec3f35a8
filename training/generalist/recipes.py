"""The generalists' training recipes as data: per dimension count and scale, the
simulated sequences and each part's training settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Sim:
    """One simulated training sequence (`gnntrack simulate` options)."""

    name: str
    preset: str
    size: tuple[int, ...]
    cells: int
    seed: int


@dataclass(frozen=True)
class Recipe:
    """What trains one generalist: the sequences, and the settings of each training.

    `primary` is the sequence the segmenter validates on and whose last frames validate the
    embedding and tracker; the others are `--extra` data, in the order listed. `seg` is the
    segmenter's training settings (`seg_config`), or None to take the `--init` segmenter as
    it is (the 3D generalist: fine-tuning it scored lower, parameters/README.md).
    """

    frames: int
    sims: tuple[Sim, ...]
    primary: str
    default_init: str  # under parameters/
    seg: dict[str, Any] | None
    seg_frames: tuple[tuple[int, int], tuple[int, int]] | None  # (train, validation)
    embedding: dict[str, Any]
    tracker: dict[str, Any]


#: The shipped recipe (parameters/README.md, "The generalists") and a small one, per dim.
RECIPES: dict[tuple[int, str], Recipe] = {
    (2, "shipped"): Recipe(
        frames=40,
        sims=(
            Sim("g2-simplus", "Fluo-N2DH-SIM+", (512, 512), 25, 201),
            Sim("g2-hela", "Fluo-N2DL-HeLa", (384, 512), 80, 202),
            Sim("g2-gowt1", "Fluo-N2DH-GOWT1", (512, 512), 15, 203),
            Sim("g2-msc", "Fluo-C2DL-MSC", (512, 512), 6, 204),
            Sim("g2-dense", "Fluo-N2DH-SIM+", (384, 384), 45, 205),
            Sim("g2-sparse", "Fluo-N2DL-HeLa", (384, 384), 25, 206),
        ),
        primary="g2-hela",
        default_init="Fluo-N2DH-SIM+/seg",
        seg={"patch": (256, 256), "looks": True, "iterations": 3000, "minutes": 16.0},
        seg_frames=((0, 32), (32, 40)),
        embedding={"iterations": 1500, "minutes": 8.0},
        tracker={"epochs": 40},
    ),
    (3, "shipped"): Recipe(
        frames=40,
        sims=(
            Sim("g3-ce", "Fluo-N3DH-CE", (24, 192, 192), 20, 301),
            Sim("g3-dense", "Fluo-N3DH-CE", (20, 160, 160), 35, 302),
            Sim("g3-sparse", "Fluo-N3DH-CE", (28, 192, 192), 10, 303),
        ),
        primary="g3-ce",
        default_init="Fluo-N3DH-CE-sim/seg",
        seg=None,
        seg_frames=None,
        embedding={"iterations": 1500, "minutes": 8.0},
        tracker={"epochs": 40, "minutes": 10.0, "spacing": (8.0, 1.0, 1.0)},
    ),
    (2, "small"): Recipe(
        frames=16,
        sims=(
            Sim("g2-simplus", "Fluo-N2DH-SIM+", (160, 160), 6, 201),
            Sim("g2-hela", "Fluo-N2DL-HeLa", (160, 160), 14, 202),
            Sim("g2-gowt1", "Fluo-N2DH-GOWT1", (160, 160), 4, 203),
        ),
        primary="g2-hela",
        default_init="Fluo-N2DH-SIM+/seg",
        seg={
            "patch": (128, 128),
            "looks": True,
            "iterations": 8,
            "batch_size": 2,
            "val_every": 4,
        },
        seg_frames=((0, 12), (12, 16)),
        embedding={"iterations": 200},
        tracker={"epochs": 12},
    ),
    (3, "small"): Recipe(
        frames=12,
        sims=(
            Sim("g3-ce", "Fluo-N3DH-CE", (12, 96, 96), 6, 301),
            Sim("g3-dense", "Fluo-N3DH-CE", (12, 96, 96), 10, 302),
        ),
        primary="g3-ce",
        default_init="Fluo-N3DH-CE-sim/seg",
        seg=None,
        seg_frames=None,
        embedding={"iterations": 200},
        tracker={"epochs": 12, "spacing": (8.0, 1.0, 1.0)},
    ),
}
