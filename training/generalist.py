"""The generalist models' training as one resumable plan of stages (`gnntrack train-generalist`).

Why: `parameters/general-2d` and `general-3d` were made by a shell recipe of a dozen
commands (simulate the training sequences, train the segmenter, the embedding, the tracker).
Here that recipe is data (`RECIPES`), the plan lists every stage's parameters, and a runner
does the stages in order, each written atomically and recorded when done, so a rerun after a
crash, a kill or `--until` redoes only what is not done. `--scale small` runs the same path
on tiny sequences in a minute or two on a CPU, which is what the tests train.

The work folder:

    plan.json                       the plan: every stage's kind, parameters, output
    data/<sequence>/                the simulated training sequences (CTC layout)
    model/seg, embedding, tracker   the model's parts as they are trained
    stages/<stage>.json             a finished stage's record

A stage counts as done when its record's fingerprint (its kind and parameters, and the
fingerprints of the stages it reads) is the plan's, its output is there and still the one
recorded, and what it read is still what it read then. The model folder `--out` is written
(a copy of model/ plus plan.json) only when every stage is done.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from inference.errors import CTCError
from inference.io.atomic import (
    atomic_file,
    atomic_output_dir,
    make_parent,
    output_lock,
    refuse_to_overwrite,
)
from inference.models.folder import read_model_config
from inference.segmentation.segmenter import MODEL_KIND as SEG_KIND
from training.embedding.fit_embedding import (
    EmbeddingTrainConfig,
    require_metric_learning,
    train_embedding,
)
from training.segmentation.fit_segmenter import SegTrainConfig
from training.segmentation.from_dataset import initial_weights, seg_config, train_on_dataset
from training.simulator import get_preset, simulate
from training.tracker.fit_tracker import TrackerTrainConfig, train_tracker

PLAN_FORMAT = 1
#: Where the shipped models lie in a checkout (the default segmenter to start from).
PARAMETERS = Path(__file__).resolve().parents[1] / "parameters"
#: The model's parts, as folders of work/model and of `--out`.
PARTS = ("seg", "embedding", "tracker")
#: Simulation seeds of `--seed N` are the recipe's + N * SEED_STRIDE (N = 0: the recipe's).
SEED_STRIDE = 1000


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


def _config(cls: type, values: dict[str, Any], data: Path) -> Any:
    """Training settings of `cls` from a stage's parameters: lists back to tuples, sequence
    names to their folders under `data`."""
    settings = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    settings["dataset"] = str(data / settings["dataset"])
    settings["extra"] = tuple(str(data / e) for e in settings["extra"])
    return cls(**settings)


@contextmanager
def _own_torch_settings() -> Iterator[None]:
    """Stages leave torch's global settings as they found them: the segmenter's training
    turns on deterministic algorithms, which must not differ between a stage run after it
    and the same stage run alone on a rerun."""
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)


def run_stage(stage: Stage, work: Path, init: Path, log: Callable[[str], None]) -> None:
    """Do `stage` in `work`, its output replaced atomically (a stage redone overwrites it)."""
    p, data, out = stage.params, work / "data", work / stage.output
    if stage.kind == "simulate":
        preset = get_preset(p["preset"]).with_options(
            frames=p["frames"],
            size=tuple(p["size"]),
            cells=p["cells"],
            seg_fraction=p["seg_fraction"],
        )
        log(str(simulate(out, preset, p["seed"], overwrite=True)))
    elif stage.kind == "copy-seg":
        with atomic_output_dir(out, overwrite=True) as tmp:
            shutil.copytree(init, tmp, dirs_exist_ok=True)
    elif stage.kind == "train-seg":
        settings = {k: tuple(v) if isinstance(v, list) else v for k, v in p["settings"].items()}
        train_on_dataset(
            data / p["dataset"],
            SegTrainConfig(**settings),
            out,
            val_frames=tuple(p["val_frames"]),
            train_frames=tuple(p["train_frames"]),
            extra=[data / e for e in p["extra"]],
            init_dir=init,
            overwrite=True,
            log=log,
        )
    elif stage.kind == "train-embedding":
        train_embedding(_config(EmbeddingTrainConfig, p, data), out, overwrite=True)
    elif stage.kind == "train-tracker":
        train_tracker(_config(TrackerTrainConfig, p, data), out.parent, overwrite=True)
    else:  # a plan.json edited by hand
        raise CTCError(f"stage {stage.name}: unknown kind {stage.kind!r}")


def digest(folder: Path) -> str | None:
    """What identifies a stage's output: a model folder's weights sha256, a simulated
    sequence's track file's; None where there is none (missing or incomplete)."""
    config, tracks = folder / "config.json", folder / "01_GT" / "TRA" / "man_track.txt"
    try:
        if config.is_file():
            return str(json.loads(config.read_text())["weights"]["sha256"])
        if tracks.is_file():
            return hashlib.sha256(tracks.read_bytes()).hexdigest()
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return None


class Runner:
    """Runs a plan in a work folder, stage by stage, skipping what is done."""

    def __init__(self, plan: Plan, work: Path, init: Path, log: Callable[[str], None]):
        self.plan, self.work, self.init, self.log = plan, Path(work), Path(init), log
        self.stages = {s.name: s for s in plan.stages}

    def _record_path(self, stage: Stage) -> Path:
        return self.work / "stages" / f"{stage.name}.json"

    def _inputs(self, stage: Stage) -> dict[str, str | None]:
        return {a: digest(self.work / self.stages[a].output) for a in stage.after}

    def done(self, stage: Stage) -> bool:
        """Whether `stage` is done with this plan's parameters (see the module's docstring)."""
        try:
            record = json.loads(self._record_path(stage).read_text())
        except (OSError, ValueError):
            return False
        output = digest(self.work / stage.output)
        return (
            isinstance(record, dict)
            and record.get("fingerprint") == self.plan.fingerprints[stage.name]
            and output is not None
            and record.get("output") == output
            and record.get("inputs") == self._inputs(stage)
        )

    def run(self, stage: Stage) -> None:
        """Do `stage` and record it; its old record goes first, so a stage stopped midway
        is never taken for done."""
        self._record_path(stage).unlink(missing_ok=True)
        started = time.monotonic()
        with _own_torch_settings():
            run_stage(stage, self.work, self.init, self.log)
        seconds = time.monotonic() - started
        record = {
            "stage": stage.name,
            "fingerprint": self.plan.fingerprints[stage.name],
            "params": stage.params,
            "output": digest(self.work / stage.output),
            "inputs": self._inputs(stage),
            "seconds": round(seconds, 1),
        }
        text = json.dumps(record, indent=2) + "\n"
        atomic_file(self._record_path(stage), lambda p: p.write_text(text))
        self.log(f"stage {stage.name}: done in {seconds:.0f} s")


def _adopt_plan(plan: Plan, work: Path, overwrite: bool) -> None:
    """Write plan.json into `work`; a different plan there is refused without `overwrite`,
    and a non-empty folder without plan.json (not a work folder) always."""
    path = work / "plan.json"
    wanted = plan.to_json()
    if path.is_file():
        try:
            held = json.loads(path.read_text())
        except ValueError:
            held = None
        if held == wanted:
            return
        if not overwrite:
            raise CTCError(f"holds another plan ({_difference(held, wanted)}); pass --overwrite "
                           "to redo what changed, or choose another --work", work)  # fmt: skip
    elif work.is_dir() and any(work.iterdir()):
        raise CTCError("not empty and not a work folder (no plan.json): choose another --work",
                       work)  # fmt: skip
    work.mkdir(parents=True, exist_ok=True)
    atomic_file(path, lambda p: p.write_text(json.dumps(wanted, indent=2) + "\n"))


def _difference(held: Any, wanted: dict[str, Any]) -> str:
    """In a few words, how plan.json `held` differs from `wanted`."""
    if not isinstance(held, dict) or not isinstance(held.get("stages"), list):
        return "unreadable plan.json"
    top = [f"{k} {held.get(k)} -> {wanted[k]}" for k in ("dim", "scale", "seed")
           if held.get(k) != wanted[k]]  # fmt: skip
    if top:
        return ", ".join(top)
    prints = {s.get("name"): s.get("fingerprint") for s in held["stages"] if isinstance(s, dict)}
    changed = [s["name"] for s in wanted["stages"] if prints.get(s["name"]) != s["fingerprint"]]
    return "stages that differ: " + (", ".join(changed) or "their order")


def train_generalist(
    plan: Plan,
    work: Path,
    out: Path,
    *,
    init: Path | None = None,
    overwrite: bool = False,
    until: str | None = None,
    log: Callable[[str], None] = print,
) -> bool:
    """Run `plan` in `work`; write the model folder `out` when every stage is done.

    `until`: stop after that stage (`out` is then not written). Returns whether `out` was
    written. `overwrite`: replace an existing `out`, and take a work folder that holds
    another plan (its stages whose parameters changed are redone).
    """
    work, out = Path(work), Path(out)
    init = Path(init) if init is not None else default_init(plan.dim)
    last = plan.stage(until).name if until is not None else None
    _refuse_nesting(work, out)
    refuse_to_overwrite(out, overwrite)
    require_metric_learning()  # before the stages that come first, not after them
    make_parent(work)
    with output_lock(work):
        _adopt_plan(plan, work, overwrite)
        runner = Runner(plan, work, init, log)
        for stage in plan.stages:
            if runner.done(stage):
                log(f"stage {stage.name}: already done, skipped")
            else:
                runner.run(stage)
            if stage.name == last:
                log(f"stopped after stage {last} (--until); run again without it to finish")
                return False
        with atomic_output_dir(out, overwrite=overwrite) as tmp:
            for part in PARTS:
                shutil.copytree(work / "model" / part, tmp / part)
            shutil.copy2(work / "plan.json", tmp / "plan.json")
    log(f"wrote {out}")
    return True


def _refuse_nesting(work: Path, out: Path) -> None:
    """CTCError if the model folder and the work folder are one or lie in each other."""
    w, o = work.resolve(), out.resolve()
    if w == o or w in o.parents or o in w.parents:
        raise CTCError(f"--out and --work ({work}) must lie apart, neither inside the other", out)
