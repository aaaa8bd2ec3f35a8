"""A generalist's training as a plan of stages, each with its parameters and a
fingerprint (its kind, parameters and the fingerprints of what it reads)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from inference.errors import CTCError
from inference.models.folder import read_model_config
from inference.segmentation.segmenter import MODEL_KIND as SEG_KIND
from training.embedding.fit_embedding import EmbeddingTrainConfig
from training.generalist.recipes import RECIPES
from training.segmentation.from_dataset import initial_weights, seg_config
from training.tracker.fit_tracker import TrackerTrainConfig

PLAN_FORMAT = 1
#: Where the shipped models lie in a checkout (the default segmenter to start from).
PARAMETERS = Path(__file__).resolve().parents[2] / "parameters"
#: The model's parts, as folders of work/model and of `--out`.
PARTS = ("seg", "embedding", "tracker")
#: Simulation seeds of `--seed N` are the recipe's + N * SEED_STRIDE (N = 0: the recipe's).
SEED_STRIDE = 1000


@dataclass(frozen=True)
class Stage:
    """One step of the plan: what it runs (`kind`), with what, where it writes (relative to
    the work folder), and which stages' outputs it reads."""

    name: str
    kind: str  # simulate | train-seg | copy-seg | train-embedding | train-tracker
    params: dict[str, Any]
    output: str
    after: tuple[str, ...] = ()


@dataclass(frozen=True)
class Plan:
    """Every stage of one generalist's training, in the order they run."""

    dim: int
    scale: str
    seed: int
    stages: tuple[Stage, ...]
    fingerprints: dict[str, str] = field(default_factory=dict, compare=False)

    def stage(self, name: str) -> Stage:
        """The stage called `name`; CTCError naming the stages there are otherwise."""
        for stage in self.stages:
            if stage.name == name:
                return stage
        names = ", ".join(s.name for s in self.stages)
        raise CTCError(f"--until {name}: no such stage in this plan; the stages: {names}")

    def to_json(self) -> dict[str, Any]:
        """The plan as plan.json holds it."""
        return {
            "format": PLAN_FORMAT,
            "dim": self.dim,
            "scale": self.scale,
            "seed": self.seed,
            "stages": [
                {**asdict(s), "after": list(s.after), "fingerprint": self.fingerprints[s.name]}
                for s in self.stages
            ],
        }


def _json(value: Any) -> Any:
    """`value` as JSON gives it back (tuples as lists), so plans compare as stored."""
    return json.loads(json.dumps(value))


def _sha256(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def _with_fingerprints(plan: Plan) -> Plan:
    prints: dict[str, str] = {}
    for s in plan.stages:
        inputs = [prints[a] for a in s.after]
        prints[s.name] = _sha256([s.kind, s.params, s.output, inputs])
    return replace(plan, fingerprints=prints)


def _model_record(folder: Path) -> dict[str, str]:
    """Which segmenter a plan starts from: its folder's last two names and weights' sha256."""
    config = read_model_config(folder, SEG_KIND)
    return {"model": f"{folder.parent.name}/{folder.name}", "sha256": config["weights"]["sha256"]}


def default_init(dim: int) -> Path:
    """The segmenter the recipe of `dim` starts from, in this checkout's parameters/."""
    return PARAMETERS / RECIPES[(dim, "shipped")].default_init


def make_plan(dim: int, scale: str, seed: int = 0, init: Path | None = None) -> Plan:
    """The plan of `RECIPES[(dim, scale)]`; `seed` seeds every training and shifts every
    simulation seed by `seed * SEED_STRIDE` (0: the recipe exactly). `init`: the segmenter
    to fine-tune (2D) or take as it is (3D), default the recipe's."""
    recipe = RECIPES[(dim, scale)]
    init = Path(init) if init is not None else default_init(dim)
    if not init.is_dir():
        raise CTCError("segmenter to start from not found; pass --init MODEL", init)
    stages = []
    for sim in recipe.sims:
        params = {
            "preset": sim.preset,
            "size": sim.size,
            "cells": sim.cells,
            "frames": recipe.frames,
            "seg_fraction": 1.0,
            "seed": sim.seed + seed * SEED_STRIDE,
        }
        stages.append(Stage(f"simulate-{sim.name}", "simulate", params, f"data/{sim.name}"))
    data = tuple(s.name for s in stages)
    extra = tuple(s.name for s in recipe.sims if s.name != recipe.primary)
    if recipe.seg is None:
        stages.append(Stage("seg", "copy-seg", _model_record(init), "model/seg"))
    else:
        cfg = seg_config(seed=seed, **recipe.seg)
        try:  # a segmenter it cannot start from: refused now, not after the simulations
            initial_weights(init, cfg)
        except CTCError as exc:
            reason = str(exc).removeprefix(f"{init}: ").removesuffix(": pass its --gamma")
            raise CTCError(
                f"--init must be a network like {recipe.default_init}'s: {reason}", init
            ) from None
        settings = asdict(cfg)
        train, val = recipe.seg_frames
        params = {
            "dataset": recipe.primary,
            "extra": extra,
            "train_frames": train,
            "val_frames": val,
            "init": _model_record(init),
            "settings": settings,
        }
        stages.append(Stage("seg", "train-seg", params, "model/seg", data))
    embedding = EmbeddingTrainConfig(recipe.primary, extra=extra, seed=seed, **recipe.embedding)
    stages.append(Stage("embedding", "train-embedding", asdict(embedding), "model/embedding", data))
    tracker = TrackerTrainConfig(
        recipe.primary, extra=extra, size_unit=True, seed=seed, **recipe.tracker
    )
    stages.append(
        Stage("tracker", "train-tracker", asdict(tracker), "model/tracker", (*data, "embedding"))
    )
    stages = tuple(replace(s, params=_json(s.params)) for s in stages)
    return _with_fingerprints(Plan(dim, scale, seed, stages))
