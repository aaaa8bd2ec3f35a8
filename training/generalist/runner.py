"""The stages run in order, each written atomically and recorded when done, so a rerun
redoes only what is not done; the model folder is written when all are."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
from training.embedding.fit_embedding import (
    EmbeddingTrainConfig,
    require_metric_learning,
    train_embedding,
)
from training.generalist.plan import PARTS, Plan, Stage, default_init
from training.segmentation.fit_segmenter import SegTrainConfig
from training.segmentation.from_dataset import train_on_dataset
from training.simulator import get_preset, simulate
from training.tracker.fit_tracker import TrackerTrainConfig, train_tracker


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
